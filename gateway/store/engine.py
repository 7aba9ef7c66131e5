"""The async engine: SQLite tuned for durable commits, or PostgreSQL; write transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

WRITE = "mail2sms_write"
T = TypeVar("T")


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
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _tune_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own BEGIN handling would defer the write lock and fail upgrades with
        # SQLITE_BUSY at once; we issue BEGIN ourselves (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that writes: on SQLite it takes the write lock up front (BEGIN IMMEDIATE)."""
    async with engine.connect() as connection:
        connection = await connection.execution_options(**{WRITE: True})
        async with connection.begin():
            yield connection


class BatchRunner:
    """Runs a function of a sync Connection inside one write transaction and commits it.

    SQLite: in one dedicated thread with a plain pysqlite connection, so a whole batch costs
    one thread hand-off instead of several per statement (aiosqlite's). PostgreSQL: on the
    event loop through the async engine (asyncpg), the function adapted by SQLAlchemy's
    greenlet bridge. Either way the same Core statements run, and the caller awaits the
    commit."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        if sqlite_path(engine.url.render_as_string(hide_password=False)) is not None:
            url = engine.url.set(drivername="sqlite+pysqlite")
            self._sync = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}, poolclass=StaticPool
            )
            _tune_sqlite(self._sync)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="mail2sms-sqlite")

    async def run(self, work: Callable[[Connection], T]) -> T:
        if self._sync is None or self._thread is None:
            async with write_transaction(self._engine) as connection:
                return await connection.run_sync(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._in_thread, work)

    def _in_thread(self, work: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.connect() as connection:
            connection = connection.execution_options(**{WRITE: True})
            with connection.begin():
                return work(connection)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()
