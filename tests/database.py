"""A migrated test database holding the demo account, and SMS written as the writers write
them, for the tests that write rows directly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import migrate, sms_ids
from gateway.store.engine import make_engine, write_transaction
from gateway.store.tables import accounts, sms, sms_groups


@asynccontextmanager
async def with_demo_account(
    url: str, created_at: datetime
) -> AsyncIterator[tuple[AsyncEngine, int]]:
    """The engine of the database at `url` upgraded to head, and the id of its demo account."""
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine)
        async with write_transaction(engine) as conn:
            account_id = await conn.scalar(
                insert(accounts)
                .returning(accounts.c.id)
                .values(
                    keyid="demo",
                    login="demo",
                    password="demo",
                    domains=["example.com"],
                    senders=[],
                    allowed_ips=[],
                    blacklist=[],
                    created_at=created_at,
                )
            )
        yield engine, int(account_id)
    finally:
        await engine.dispose()


def insert_flat(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> list[int]:
    """SMS given as single rows with their group's columns, written as the writers write them:
    consecutive rows that share those columns become one group, its ids one block. Their ids,
    in order (run it with `AsyncConnection.run_sync`)."""
    groups: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for row in rows:
        shared = {name: row.get(name) for name in sms_ids.GROUP_FIELDS}
        shared["channel"] = shared["channel"] or "mail"
        own = {"tracker": "", "state": "sent", "due_at": None}
        own.update((name, value) for name, value in row.items() if name not in shared)
        if groups and groups[-1][0] == shared:
            groups[-1][1].append(own)
        else:
            groups.append((shared, [own]))
    if not groups:
        return []
    begins = sms_ids.blocks(conn, [len(members) for _, members in groups])
    group_rows, sms_rows = [], []
    for begin, (shared, members) in zip(begins, groups, strict=True):
        group_rows.append(sms_ids.group_row(begin, len(members), shared))
        sms_rows.extend({"id": begin + k, "group_id": begin, **o} for k, o in enumerate(members))
    conn.execute(insert(sms_groups), group_rows)
    conn.execute(insert(sms), sms_rows)
    return [row["id"] for row in sms_rows]
