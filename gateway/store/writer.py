"""The one way a batch of emails reaches the database: the writer's interface, and the choice
of its implementation (sqlite_writer.py in a thread or in its own process (writer_process.py),
postgres_writer.py), made once from the engine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.model import Intake, ReplyState, RuleSettings
from gateway.store.batch import Answered, Written
from gateway.store.postgres_writer import PostgresWriter
from gateway.store.sqlite_writer import SqliteWriter
from gateway.store.writer_process import ProcessWriter

__all__ = ["Writer", "Written", "open_writer"]

Item = TypeVar("Item")


class Writer(Protocol[Item]):
    # How many batches `apply` may be given at once: it still applies and commits them one
    # after the other, in the order they were given (the process writer takes 2, the others 1).
    depth: int

    def prepare(self, item: Intake) -> Item:
        """The email or call made ready for `apply` by whoever read it (a thread, for a big
        one): the process writer pickles it there; the others take it as it is."""
        ...

    async def apply(self, batch: Sequence[Intake | Item], now: datetime) -> list[Written]:
        """Apply every email of the batch (each as read, or as `prepare` made it) in one
        transaction and commit it, all or nothing: raises when any of them failed (its
        rate-limit tokens are then given back)."""
        ...

    def start(self, batch: Sequence[Intake | Item], now: datetime, answered: Answered) -> bool:
        """`apply` without a task, if the writer can take the batch now: True, and `answered`
        is later called on the event loop with what `apply` would return or raise; False,
        and nothing was done (the caller then uses `apply`)."""
        ...

    def close(self) -> None:
        """Release the writer's own thread and connections (the engine stays open)."""
        ...


def open_writer(
    engine: AsyncEngine, rules: RuleSettings, reply_state: ReplyState, *, own_process: bool = False
) -> Writer[Any]:
    """The writer for the engine's database; `reply_state` is what a queued reply starts as.
    `own_process`: SQLite's writer runs in a child process, off the event loop's GIL (what
    `serve` does); otherwise in a thread, which starts at once (the in-process pytest plugin)."""
    if engine.dialect.name == "sqlite":
        if own_process:
            return ProcessWriter(engine.url, rules, reply_state)
        return SqliteWriter(engine.url, rules, reply_state)
    return PostgresWriter(engine, rules, reply_state)
