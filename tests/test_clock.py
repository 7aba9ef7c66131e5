"""The gateway's clock: frozen only within years 1970–9999, so every stored time has 4 digits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.clock import EARLIEST, LATEST, Clock


@pytest.mark.parametrize(
    "instant",
    [
        datetime(1, 1, 2, tzinfo=UTC),
        EARLIEST - timedelta(microseconds=1),
        LATEST + timedelta(microseconds=1),
        datetime(9999, 12, 31, 23, tzinfo=UTC),
    ],
)
def test_the_clock_refuses_an_instant_outside_its_range(instant: datetime) -> None:
    clock = Clock()
    with pytest.raises(ValueError, match="1970"):
        clock.freeze(instant)
    assert clock.frozen_at is None


@pytest.mark.parametrize("instant", [EARLIEST, LATEST])
def test_the_clock_accepts_its_extremes(instant: datetime) -> None:
    assert Clock(instant).now() == instant


@pytest.mark.parametrize("instant", [EARLIEST, LATEST])
def test_mail_at_the_clocks_extremes_is_stored_and_listed_with_four_digit_years(
    gateway_on: Any, instant: datetime
) -> None:
    gateway_on.set_clock(instant)
    account = gateway_on.add_account(domains=["example.com"], credit=5)
    fault = gateway_on.add_fault(29, number="0601020399")
    gateway_on.send(
        gateway_on.request_email(
            f"<envoi><keyid>{account['keyid']}</keyid><num>0601020304</num><sms>Bonjour</sms>"
            "<emailAck>ack@example.com</emailAck><emailId>1548</emailId></envoi>"
        )
    )
    stamps = [account["created_at"], fault["created_at"]]
    stamps += [email["received_at"] for email in gateway_on.emails()]
    stamps += [sms["created_at"] for sms in gateway_on.sms()]
    stamps += [reply["created_at"] for reply in gateway_on.replies()]
    assert len(stamps) >= 4
    year = f"{instant.year:04d}-"
    assert all(re.fullmatch(rf"{year}\d\d-\d\dT.*", stamp) for stamp in stamps), stamps
    page = httpx.get(f"{gateway_on.api_url}/api/v1/accounts", timeout=10)
    assert page.status_code == 200
