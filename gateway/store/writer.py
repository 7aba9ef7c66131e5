"""The one way a batch of emails reaches the database: the writer's interface, and the choice
of its implementation (sqlite_writer.py, postgres_writer.py), made once from the engine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.model import Intake, ReplyState, RuleSettings
from gateway.store.batch import Written
from gateway.store.postgres_writer import PostgresWriter
from gateway.store.sqlite_writer import SqliteWriter

__all__ = ["Writer", "Written", "open_writer"]


class Writer(Protocol):
    async def apply(self, batch: Sequence[Intake], now: datetime) -> list[Written]:
        """Apply every email of the batch in one transaction and commit it, all or nothing:
        raises when any of them failed (its rate-limit tokens are then given back)."""
        ...

    def close(self) -> None:
        """Release the writer's own thread and connections (the engine stays open)."""
        ...


def open_writer(engine: AsyncEngine, rules: RuleSettings, reply_state: ReplyState) -> Writer:
    """The writer for the engine's database; `reply_state` is what a queued reply starts as."""
    if engine.dialect.name == "sqlite":
        return SqliteWriter(engine.url, rules, reply_state)
    return PostgresWriter(engine, rules, reply_state)
