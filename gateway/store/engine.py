"""The async engine: SQLite tuned for durable commits, or PostgreSQL; write transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.store import json_columns
from gateway.store.sqlite_tuning import WRITE, tune_sqlite

# SQLite connections kept open for reads (each is an aiosqlite thread): as many as the HTTP
# requests served at once, so that a busy API does not open and close one per request.
POOL = 32
# What the rest of the gateway holds to reach the database and hands to store functions;
# only gateway/store/ knows it is SQLAlchemy's async engine.
Database: TypeAlias = AsyncEngine


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return None
    return Path(parsed.database)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine whose commits are durable: SQLite WAL + synchronous=FULL, PostgreSQL as is."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30},
            pool_size=POOL,
            max_overflow=POOL,
            **json_columns.ENGINE_OPTIONS,
            **kwargs,
        )
        tune_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        **json_columns.ENGINE_OPTIONS,
        **kwargs,
    )


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that writes: on SQLite it takes the write lock up front (BEGIN IMMEDIATE)."""
    async with engine.connect() as connection:
        connection = await connection.execution_options(**{WRITE: True})
        async with connection.begin():
            yield connection


async def give_space_back(engine: AsyncEngine) -> None:
    """After a reset, return the freed pages to the file system (SQLite keeps them otherwise);
    PostgreSQL's autovacuum does this on its own."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute("VACUUM")  # aiosqlite: outside any transaction (isolation None)
        await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
