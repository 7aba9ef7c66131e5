"""Deferred sends: scheduled SMS become sent once the gateway's clock reaches their due time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.scheduler import Scheduler
from gateway.store import reads
from tests.web.conftest import Rows

DUE = datetime(2026, 12, 1, 17, 30, tzinfo=UTC)


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = load_settings(
        overrides={
            "database": {"url": database_url},
            "clock": {"fixed": "2026-12-01T10:00:00+01:00"},
        },
        environ={},
    )
    gw = Gateway(settings)
    await gw.prepare_database()
    yield gw
    await gw.engine.dispose()


async def _states(gateway: Gateway) -> list[str]:
    async with gateway.engine.connect() as conn:
        found = await reads.list_sms(conn)
    return [item["state"] for item in found.items]


async def test_a_scheduled_sms_is_sent_when_the_frozen_clock_passes_its_due_time(
    gateway: Gateway,
) -> None:
    rows = Rows(gateway)
    await rows.sms(state="scheduled", due_at=DUE, channel="http")
    scheduler = Scheduler(gateway.engine, gateway.clock, gateway.changes)
    assert await scheduler.release() == 0
    assert await _states(gateway) == ["scheduled"]
    gateway.clock.freeze(DUE - timedelta(seconds=1))
    assert await scheduler.release() == 0
    gateway.clock.freeze(DUE)
    seen = gateway.changes.versions.get("sms", 0)
    assert await scheduler.release() == 1
    assert await _states(gateway) == ["sent"]
    assert gateway.changes.versions.get("sms", 0) > seen


async def test_two_schedulers_send_a_due_sms_once(gateway: Gateway) -> None:
    rows = Rows(gateway)
    for _ in range(3):
        await rows.sms(state="scheduled", due_at=DUE, channel="http")
    gateway.clock.freeze(DUE + timedelta(hours=1))
    first = Scheduler(gateway.engine, gateway.clock, gateway.changes)
    second = Scheduler(gateway.engine, gateway.clock, gateway.changes)
    assert await first.release() + await second.release() == 3
    assert await _states(gateway) == ["sent"] * 3
