"""Retention (SPEC §16): pruning by age and count, pending replies kept, refused mail cut to
`storage.raw_max_bytes`, and a reset that gives the disk space back; on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.retention import Pruner
from gateway.store import admin, reads
from gateway.store.engine import sqlite_path
from tests.web.conftest import Rows

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    settings = load_settings(
        overrides={"database": {"url": database_url}, "clock": {"fixed": NOW.isoformat()}},
        environ={},
    )
    gw = Gateway(settings)
    await gw.prepare_database()
    yield gw
    await gw.engine.dispose()


async def _emails(gateway: Gateway) -> list[str | None]:
    async with gateway.engine.connect() as conn:
        return [item["email_id"] for item in (await reads.list_emails(conn)).items]


def _pruner(gateway: Gateway, **storage: int) -> Pruner:
    settings = gateway.settings.storage.model_copy(update=storage)
    return Pruner(gateway.engine, gateway.clock, settings, gateway.changes)


async def test_emails_older_than_max_age_go_with_their_sms_and_replies(gateway: Gateway) -> None:
    rows = Rows(gateway)
    old = await rows.email(email_id="1", received_at=NOW - timedelta(days=8))
    await rows.sms(email_row=old, email_id="1", created_at=NOW - timedelta(days=8))
    await rows.reply(email_row=old, email_id="1", state="delivered")
    await rows.email(email_id="2", received_at=NOW - timedelta(days=6))
    nine_days = NOW - timedelta(days=9)
    await rows.sms(email_row=None, email_id=None, channel="http", created_at=nine_days)
    deleted = await _pruner(gateway, max_age=7 * 86400).prune()
    assert deleted == {"emails": 1, "sms": 2, "replies": 1}
    assert await _emails(gateway) == ["2"]


async def test_only_the_newest_max_emails_are_kept(gateway: Gateway) -> None:
    rows = Rows(gateway)
    for n in range(5):
        await rows.email(email_id=str(n))
    assert (await _pruner(gateway, max_emails=2).prune())["emails"] == 3
    assert await _emails(gateway) == ["4", "3"]


async def test_an_email_whose_reply_is_pending_is_never_pruned(gateway: Gateway) -> None:
    rows = Rows(gateway)
    waiting = await rows.email(email_id="1")
    await rows.reply(email_row=waiting, email_id="1", state="pending")
    await rows.email(email_id="2")
    assert (await _pruner(gateway, max_emails=1).prune())["emails"] == 0
    assert await _emails(gateway) == ["2", "1"]


async def test_no_limit_prunes_nothing(gateway: Gateway) -> None:
    rows = Rows(gateway)
    await rows.email(email_id="1", received_at=NOW - timedelta(days=3650))
    pruner = _pruner(gateway)
    assert not pruner.active
    assert await pruner.prune() == {"emails": 0, "sms": 0, "replies": 0}


async def test_a_reset_gives_the_disk_space_back_on_sqlite(tmp_path: Path) -> None:
    # PostgreSQL's autovacuum gives the space back on its own; SQLite keeps it unless asked.
    url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    gateway = Gateway(load_settings(overrides={"database": {"url": url}}, environ={}))
    await gateway.prepare_database()
    path = sqlite_path(url)
    assert path is not None
    rows = Rows(gateway)
    for n in range(40):
        await rows.email(email_id=str(n), raw=b"x" * 100_000)
    grown = path.stat().st_size + path.with_name(path.name + "-wal").stat().st_size
    await admin.reset_messages(gateway.engine)
    wal = path.with_name(path.name + "-wal")
    after = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    await gateway.engine.dispose()
    assert after < grown / 4, (grown, after)
