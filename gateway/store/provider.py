"""The statements of the provider's HTTP API besides sending: credit, blacklist, campaigns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.core.model import SmsState
from gateway.store.engine import write_transaction
from gateway.store.tables import (
    GROUPS_WITH_SMS,
    SCHEDULED,
    SMS_CONTENT,
    accounts,
    sms,
    sms_groups,
)


async def credit(conn: AsyncConnection, account_id: int) -> int:
    found = await conn.execute(select(accounts.c.credit).where(accounts.c.id == account_id))
    return int(found.scalar_one())


async def _locked_blacklist(conn: AsyncConnection, account_id: int) -> list[str]:
    query = select(accounts.c.blacklist).where(accounts.c.id == account_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # SQLite's write transaction already excludes others
    return list((await conn.execute(query)).scalar_one())


async def blacklist_add(conn: AsyncConnection, account_id: int, numbers: Sequence[str]) -> None:
    """Add normalised numbers (inside a write transaction; concurrent edits never lose one)."""
    current = await _locked_blacklist(conn, account_id)
    added = [n for n in dict.fromkeys(numbers) if n not in current]
    if added:
        await conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(blacklist=[*current, *added])
        )


async def blacklist_remove(
    conn: AsyncConnection, account_id: int, numbers: Sequence[str]
) -> None:
    current = await _locked_blacklist(conn, account_id)
    kept = [n for n in current if n not in set(numbers)]
    if kept != current:
        await conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(blacklist=kept)
        )


async def blacklist(conn: AsyncConnection, account_id: int) -> list[str]:
    found = await conn.execute(select(accounts.c.blacklist).where(accounts.c.id == account_id))
    return list(found.scalar_one())


async def sms_between(
    conn: AsyncConnection, account_id: int, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The account's SMS created in [start, end], oldest first (the campaign report)."""
    rows = await conn.execute(
        select(
            sms.c.id,
            sms_groups.c.created_at,
            *SMS_CONTENT,
            sms_groups.c.channel,
            sms.c.state,
            sms.c.due_at,
            sms_groups.c.email_id,
        )
        .select_from(GROUPS_WITH_SMS)
        .where(
            sms_groups.c.account_id == account_id,
            sms_groups.c.created_at >= start,
            sms_groups.c.created_at <= end,
        )
        .order_by(sms_groups.c.id, sms.c.id)
    )
    return [dict(row._mapping) for row in rows]


_DUE = (SCHEDULED,)


async def release_due(engine: AsyncEngine, now: datetime) -> int:
    """Scheduled SMS whose due time has come become `sent`; how many did. A row changes state
    once, whichever replica runs this, so a deferred SMS is sent once."""
    due = (*_DUE, sms.c.due_at <= now)
    # Looking first without the write lock keeps idle rounds off the SQLite writer.
    async with engine.connect() as conn:
        if (await conn.execute(select(sms.c.id).where(*due).limit(1))).first() is None:
            return 0
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(sms).where(*due).values(state=SmsState.SENT.value)
        )
    return int(result.rowcount)
