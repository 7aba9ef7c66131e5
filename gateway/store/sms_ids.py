"""The ids of SMS, reserved a block at a time: the SMS of one request (tables.sms_groups) have
consecutive ids, none of another request's in between, whichever replica writes them.

SQLite writes one transaction at a time: the next ids follow the last one given
(`id_counters`: never reused, not even after a reset), moved on by the block in the same
transaction. PostgreSQL's replicas write at once: the sequence is moved on by the whole block
under a lock held until the commit (taken last in a writer's transaction, after every row
lock: no deadlock).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate
from typing import Any

from sqlalchemy import Connection, text

# A counter of tables.id_counters on SQLite (no row: 0), and its move to a new last value.
_COUNTER = "SELECT last FROM id_counters WHERE name = ?"
_MOVE_COUNTER = (
    "INSERT INTO id_counters (name, last) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET last = excluded.last"
)
SMS = "sms"  # the counter of the last SMS id given
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_KEY = 0x6D32_736D  # "m2sm": this lock's number among the database's advisory locks
_MOVE_ON = text(
    "SELECT setval(pg_get_serial_sequence('sms', 'id'), "
    "nextval(pg_get_serial_sequence('sms', 'id')) + :count - 1)"
)
# The columns an SMS takes from its group (the rest are its own).
GROUP_FIELDS = ("email_row", "account_id", "email_id", "created_at", "channel")


def reserve(conn: Connection, count: int) -> int:
    """The first of `count` consecutive SMS ids, in the caller's write transaction."""
    if conn.dialect.name == "sqlite":
        return _reserve_on(conn.exec_driver_sql, count)
    conn.execute(_LOCK, {"key": _KEY})
    return int(conn.execute(_MOVE_ON, {"count": count}).scalar_one()) - count + 1


def reserve_on_sqlite(driver: sqlite3.Connection, count: int) -> int:
    """`reserve` on SQLite's own driver connection, in its write transaction: the same two
    statements without SQLAlchemy's execution around each (the SQLite writer's path)."""
    return _reserve_on(driver.execute, count)


def _reserve_on(execute: Callable[[str, tuple[Any, ...]], Any], count: int) -> int:
    """SQLite's reservation, through `execute` (SQLAlchemy's exec_driver_sql or the driver's
    own): the counter read, then moved on by the block."""
    (last,) = execute(_COUNTER, (SMS,)).fetchone() or (0,)
    first = int(last) + 1
    execute(_MOVE_COUNTER, (SMS, first + count - 1))
    return first


def counter(conn: Connection, name: str) -> int:
    """SQLite: the last value of this counter of `id_counters` (0 before its first move)."""
    return int(conn.exec_driver_sql(_COUNTER, (name,)).scalar() or 0)


def move_counter(conn: Connection, name: str, last: int) -> None:
    """SQLite, in the caller's write transaction: the counter's new last value."""
    conn.exec_driver_sql(_MOVE_COUNTER, (name, last))


def blocks(conn: Connection | sqlite3.Connection, sizes: Sequence[int]) -> list[int]:
    """The first id of each of these groups of SMS, one block reserved for them all (on an
    SQLAlchemy connection, or on SQLite's own driver connection)."""
    count = sum(sizes)
    first = (
        reserve_on_sqlite(conn, count)
        if isinstance(conn, sqlite3.Connection)
        else reserve(conn, count)
    )
    return list(accumulate(sizes[:-1], initial=first))


def group_row(first: int, count: int, shared: Mapping[str, Any]) -> dict[str, Any]:
    """The row of `sms_groups` for `count` SMS from id `first`, with their shared columns."""
    return {"id": first, "last_id": first + count - 1, **{n: shared[n] for n in GROUP_FIELDS}}
