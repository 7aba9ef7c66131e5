"""A migrated test database holding the demo account, for the tests that write rows directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import migrate
from gateway.store.engine import make_engine, write_transaction
from gateway.store.tables import accounts


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
