"""Sending over the provider's HTTP API (SPEC §15) on a running gateway, on both databases:
/sms, /smsmulti, /comptage, deferred sends with the clock, and the mail rules applied as is."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gateway.core import codes
from gateway.testing import RunningGateway
from tests.provider_schema import validate


@pytest.fixture
def api(gateway_on: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{gateway_on.api_url}/cgi-bin", timeout=30) as client:
        yield client


def _post(api: httpx.Client, path: str, status: int = 200, **body: Any) -> Any:
    response = api.post(path, json=body)
    assert response.status_code == status, response.text
    answer = response.json()
    validate(path, "post", status, answer)
    return answer


def _entries(answer: Any) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = answer["etat"]["etat"]
    return entries


def test_sms_sends_one_sms_recorded_with_channel_http(
    gateway_on: RunningGateway, api: httpx.Client
) -> None:
    answer = _post(
        api, "/sms", keyid="demo", num="06 01 02 03 04", sms="Bonjour", emetteur="MaSociete",
        tracker="t-1",
    )
    assert answer == {
        "etat": {
            "etat": [
                {"code": "0", "tel": "06 01 02 03 04", "message": codes.MESSAGES[0],
                 "smslong": "1"}
            ]
        }
    }
    (sms,) = gateway_on.sms()
    assert sms["channel"] == "http" and sms["state"] == "sent" and sms["email_id"] is None
    assert (sms["to"], sms["sender"], sms["tracker"]) == ("0601020304", "MaSociete", "t-1")
    assert sms["text"] == "Bonjour\r\nSTOP 36111"  # the document's 12 characters over HTTP
    assert gateway_on.account()["credit"] == 999


def test_smsmulti_one_text_per_number_with_trackers_in_order(
    gateway_on: RunningGateway, api: httpx.Client
) -> None:
    answer = _post(
        api, "/smsmulti", keyid="demo", num=["0601020304", "0101020304", "0601020305"],
        sms=["un", "deux", "trois"], tracker=["a", "b", "c"],
    )
    assert [(e["tel"], e["code"]) for e in _entries(answer)] == [
        ("0601020304", "0"), ("0101020304", "21"), ("0601020305", "0"),
    ]
    sent = {s["to"]: (s["text"], s["tracker"]) for s in gateway_on.sms(channel="http")}
    assert sent == {"0601020304": ("un", "a"), "0601020305": ("trois", "c")}
    assert gateway_on.sms(channel="mail") == []


def test_every_mail_rule_applies_over_http(gateway_on: RunningGateway, api: httpx.Client) -> None:
    gateway_on.add_fault(codes.OVERFLOW, count=1, number="0601020306")
    answer = _post(
        api, "/smsmulti", keyid="demo", emetteur="MaSociete",
        num=["", "12", "0699000024", "0601020306", "+447911123456", "0601020307"],
        sms="x" * 300,
    )
    assert [e["code"] for e in _entries(answer)] == ["6", "7", "24", "29", "27", "34"]
    assert gateway_on.sms() == []


def test_smslong_999_and_ucs2(api: httpx.Client) -> None:
    long = _post(api, "/sms", keyid="demo", num="0601020304", sms="a" * 400, smslong="999")
    assert _entries(long)[0]["smslong"] == "3"
    forced = _post(api, "/sms", keyid="demo", num="0601020304", sms="a" * 71, smslong=2, ucs2="1")
    assert _entries(forced)[0]["smslong"] == "2"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"num": "0601020304", "sms": "x"}, "1"),
        ({"keyid": "nobody", "num": "0601020304", "sms": "x"}, "3"),
        ({"keyid": "demo", "sms": "x"}, "999"),
        ({"keyid": "demo", "num": "0601020304"}, "999"),
    ],
)
def test_general_errors_are_400_without_tel_and_send_nothing(
    gateway_on: RunningGateway, api: httpx.Client, body: dict[str, Any], code: str
) -> None:
    (entry,) = _entries(_post(api, "/sms", 400, **body))
    assert entry["code"] == code and "tel" not in entry
    assert gateway_on.sms() == []
    assert gateway_on.account()["credit"] == 1000


def test_more_numbers_than_the_limit_is_23_and_nothing_is_debited(
    gateway_on: RunningGateway, api: httpx.Client
) -> None:
    numbers = [f"06010{n:05d}" for n in range(501)]
    (entry,) = _entries(_post(api, "/smsmulti", 400, keyid="demo", num=numbers, sms="x"))
    assert entry["code"] == "23"
    assert gateway_on.account()["credit"] == 1000


def test_credit_runs_out_mid_request_with_12(
    gateway_on: RunningGateway, api: httpx.Client
) -> None:
    account = gateway_on.add_account(domains=["example.com"], credit=2)
    answer = _post(
        api, "/smsmulti", keyid=account["keyid"], num=["0601020304", "0601020305", "0601020306"],
        sms="x",
    )
    assert [e["code"] for e in _entries(answer)] == ["0", "0", "12"]
    assert gateway_on.account(account["keyid"])["credit"] == 0


def test_a_client_outside_the_allowed_ips_is_14(
    gateway_on: RunningGateway, api: httpx.Client
) -> None:
    account = gateway_on.add_account(domains=["example.com"], credit=5, allowed_ips=["192.0.2.1"])
    (entry,) = _entries(
        _post(api, "/sms", 400, keyid=account["keyid"], num="0601020304", sms="x")
    )
    assert entry["code"] == "14"


@pytest.mark.parametrize("path", ["/sms", "/smsmulti"])
def test_a_keyid_or_ip_error_comes_before_any_other_error_of_a_send(
    gateway_on: RunningGateway, api: httpx.Client, path: str
) -> None:
    # The account of an authorised send is read by the writer alone; a call with another
    # error still answers the keyid's (3) or the IP's (14) first, as every other endpoint.
    fenced = gateway_on.add_account(domains=["example.com"], credit=5, allowed_ips=["192.0.2.1"])
    cases = [
        ({"keyid": "nobody", "num": "0601020304", "sms": "x"}, "3"),  # the writer's answer
        ({"keyid": "nobody", "sms": "x"}, "3"),  # no num either
        ({"keyid": "nobody", "num": "0601020304"}, "3"),  # no sms either
        ({"keyid": fenced["keyid"], "num": "0601020304"}, "14"),
        ({"keyid": fenced["keyid"], "num": "0601020304", "sms": "x"}, "14"),
        ({"keyid": "demo", "num": "0601020304"}, "999" if path == "/smsmulti" else None),
        ({"keyid": "", "num": "0601020304", "sms": "x"}, "1"),
    ]
    if path == "/smsmulti":
        cases.append(({"keyid": "nobody", "repertoireId": "1", "sms": "x"}, "3"))
        cases.append(({"keyid": fenced["keyid"], "repertoireId": "1", "sms": "x"}, "14"))
    for body, code in cases:
        (entry,) = _entries(_post(api, path, 400, **body))
        if code is not None:
            assert entry["code"] == code, body
        else:  # the field's own error, whatever its code
            assert entry["code"] not in ("1", "3", "14"), body
    assert gateway_on.sms() == []
    assert gateway_on.account(fenced["keyid"])["credit"] == 5


def test_a_deferred_send_is_scheduled_then_sent_when_the_clock_passes(
    gateway_on: RunningGateway, api: httpx.Client
) -> None:
    # The fixture's clock: Tuesday 2026-12-01 10:00 in Paris.
    answer = _post(
        api, "/sms", keyid="demo", num="0601020304", sms="plus tard",
        date_envoi="2026-12-01 15:30", gmt_zone="Europe/Paris",
    )
    assert _entries(answer)[0]["code"] == "0"
    (sms,) = gateway_on.sms()
    assert (sms["state"], sms["due_at"]) == ("scheduled", "2026-12-01T14:30:00+00:00")
    assert gateway_on.account()["credit"] == 999  # debited when requested
    gateway_on.set_clock("2026-12-01T15:30:00+01:00")
    deadline = time.monotonic() + 5  # the scheduler looks every 0.5 s
    while gateway_on.sms()[0]["state"] != "sent":
        assert time.monotonic() < deadline, "the scheduled SMS was not released"
    assert gateway_on.account()["credit"] == 999  # and not debited twice


def test_a_deferred_send_into_the_evening_is_24(api: httpx.Client) -> None:
    answer = _post(api, "/sms", keyid="demo", num="0601020304", sms="x",
                   date_envoi="2026-12-01 21:00")
    assert _entries(answer)[0]["code"] == "24"


def test_comptage_counts_as_a_send_would_and_sends_nothing(
    gateway_on: RunningGateway, api: httpx.Client
) -> None:
    answer = _post(
        api, "/comptage", keyid="demo", comptage="1", num="0601020304", sms="a" * 148,
        emetteur="MaSociete",
    )
    assert _entries(answer) == [{"tel": "0601020304", "nb_sms": "1", "nb_caractere": "160"}]
    assert gateway_on.sms() == []


def test_smsmulti_to_a_directory(gateway_on: RunningGateway, api: httpx.Client) -> None:
    created = api.post(
        "/repertoire", json={"keyid": "demo", "repertoireEdit": "create", "repertoireNom": "R"}
    ).json()
    directory = _entries(created)[0]["repertoireId"]
    api.put(
        "/repertoire",
        json={"keyid": "demo", "repertoireEdit": "add", "repertoireId": directory,
              "num": ["0601020311", "0601020312"]},
    )
    answer = _post(api, "/smsmulti", keyid="demo", repertoireId=directory, sms="Bonjour")
    assert [e["tel"] for e in _entries(answer)] == ["0601020311", "0601020312"]
    unknown = _post(api, "/smsmulti", 400, keyid="demo", repertoireId="999999", sms="x")
    assert "repertoireId" in _entries(unknown)[0]["message"]


def test_concurrent_sends_never_overdraw_the_credit(
    gateway_on: RunningGateway, api: httpx.Client
) -> None:
    account = gateway_on.add_account(domains=["example.com"], credit=7)

    def send(n: int) -> str:
        body = {"keyid": account["keyid"], "num": f"06010200{n:02d}", "sms": "x"}
        return str(api.post("/sms", json=body).json()["etat"]["etat"][0]["code"])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(20)))
    assert sorted(results) == ["0"] * 7 + ["12"] * 13
    assert gateway_on.account(account["keyid"])["credit"] == 0
