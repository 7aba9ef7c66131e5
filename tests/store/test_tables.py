"""The partial SMS indexes of tables.py: they hold only the SMS their reads look for, and those
reads find them, on SQLite and PostgreSQL at the migrated schema."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store import provider, reads
from gateway.store.engine import write_transaction
from gateway.store.tables import SCHEDULED, sms, with_tracker
from tests.database import insert_flat, with_demo_account

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SCHEDULED_SMS = {
    "to": "+33601020304", "tracker": "", "channel": "http", "state": "scheduled",
    "due_at": NOW - timedelta(hours=1),
}  # fmt: skip


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database with an account, three SMS of which one has a tracker, and one
    scheduled SMS due an hour ago."""
    async with with_demo_account(database_url, NOW) as (engine, account_id):
        sent = {
            "account_id": account_id, "sender": "S", "text": "t", "parts": 1,
            "encoding": "gsm7", "created_at": NOW, "channel": "mail", "state": "sent",
            "due_at": None,
        }  # fmt: skip
        async with write_transaction(engine) as conn:
            await conn.run_sync(
                insert_flat,
                [
                    {**sent, "to": "+33601020301", "tracker": "campaign-7"},
                    {**sent, "to": "+33601020302", "tracker": ""},
                    {**sent, "to": "+33601020303", "tracker": ""},
                    {**sent, **SCHEDULED_SMS},
                ],
            )
        yield engine


async def _plan(conn: AsyncConnection, statement: Any) -> str:
    """How the database runs it (PostgreSQL told not to scan a table it could avoid: with four
    rows it would rather, and the test is whether it can)."""
    compiled = statement.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "sqlite":
        rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
        return " | ".join(str(row[-1]) for row in rows)
    await conn.exec_driver_sql("SET enable_seqscan = off")
    rows = await conn.exec_driver_sql(f"EXPLAIN {compiled}")
    return " | ".join(str(row[0]) for row in rows)


async def _definition(conn: AsyncConnection, name: str) -> str:
    """The index as the database keeps it, PostgreSQL's casts and parentheses left out."""
    found = await conn.exec_driver_sql(
        f"SELECT sql FROM sqlite_master WHERE name = '{name}'"
        if conn.dialect.name == "sqlite"
        else f"SELECT indexdef FROM pg_indexes WHERE indexname = '{name}'"
    )
    kept = re.sub(r"[()]|::[a-z ]+?(?=[ )]|$)", "", str(found.scalar_one()))
    return kept.replace("<>", "!=")


async def test_the_tracker_index_holds_the_sms_with_a_tracker_and_the_filter_finds_it(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        plan = await _plan(conn, select(sms.c.id).where(with_tracker("campaign-7")))
        assert "ix_sms_tracker_id" in plan, plan
        definition = await _definition(conn, "ix_sms_tracker_id")
        assert definition.endswith("WHERE tracker != ''"), definition
        tracked = await reads.list_sms(conn, tracker="campaign-7")
        untracked = await reads.list_sms(conn, tracker="")
    assert [item["to"] for item in tracked.items] == ["+33601020301"]
    assert tracked.total == 1
    # No tracker is a filter too, though those SMS are not in the index.
    assert [item["to"] for item in untracked.items] == [
        "+33601020304",
        "+33601020303",
        "+33601020302",
    ]
    assert untracked.total == 3


async def test_the_due_time_index_holds_the_scheduled_sms_and_their_release_finds_it(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        definition = await _definition(conn, "ix_sms_state_due_at")
        assert definition.endswith("WHERE state = 'scheduled'"), definition
        plan = await _plan(conn, select(sms.c.id).where(SCHEDULED, sms.c.due_at <= NOW))
        assert "ix_sms_state_due_at" in plan, plan
    assert await provider.release_due(engine, NOW) == 1
    assert await provider.release_due(engine, NOW) == 0
