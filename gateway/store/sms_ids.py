"""The ids of SMS, reserved a block at a time: the SMS of one request (tables.sms_groups) have
consecutive ids, none of another request's in between, whichever replica writes them.

SQLite writes one transaction at a time: the next ids follow the last one given
(`id_counters`: never reused, not even after a reset), moved on by the block in the same
transaction. PostgreSQL's replicas write at once: the sequence is moved on by the whole block
under a lock held until the commit (taken last in a writer's transaction, after every row
lock: no deadlock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any

from sqlalchemy import Connection, insert, text

from gateway.store.tables import sms, sms_groups

# The last SMS id given on SQLite (no row: none yet), and its move past a reserved block.
SQLITE_LAST = "SELECT last FROM id_counters WHERE name = 'sms'"
SQLITE_MOVE_ON = (
    "INSERT INTO id_counters (name, last) VALUES ('sms', ?) "
    "ON CONFLICT (name) DO UPDATE SET last = excluded.last"
)
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
        first = int(conn.exec_driver_sql(SQLITE_LAST).scalar() or 0) + 1
        conn.exec_driver_sql(SQLITE_MOVE_ON, (first + count - 1,))
        return first
    conn.execute(_LOCK, {"key": _KEY})
    return int(conn.execute(_MOVE_ON, {"count": count}).scalar_one()) - count + 1


def starts(first: int, sizes: Sequence[int]) -> list[int]:
    """The first id of each group of these sizes, the block starting at `first`."""
    return list(accumulate(sizes[:-1], initial=first))


def insert_flat(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> list[int]:
    """SMS given as single rows with their group's columns (tests, benchmarks, seeding):
    consecutive rows that share those columns become one group. Their ids, in order."""
    groups: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for row in rows:
        shared = {name: row.get(name) for name in GROUP_FIELDS}
        shared["channel"] = shared["channel"] or "mail"
        own = {"tracker": "", "state": "sent", "due_at": None}
        own.update((name, value) for name, value in row.items() if name not in GROUP_FIELDS)
        if groups and groups[-1][0] == shared:
            groups[-1][1].append(own)
        else:
            groups.append((shared, [own]))
    if not groups:
        return []
    sizes = [len(members) for _, members in groups]
    first = reserve(conn, sum(sizes))
    group_rows: list[dict[str, Any]] = []
    sms_rows: list[dict[str, Any]] = []
    for start, (shared, members) in zip(starts(first, sizes), groups, strict=True):
        group_rows.append({"id": start, "last_id": start + len(members) - 1, **shared})
        sms_rows.extend(
            {"id": start + k, "group_id": start, **own} for k, own in enumerate(members)
        )
    conn.execute(insert(sms_groups), group_rows)
    conn.execute(insert(sms), sms_rows)
    return [row["id"] for row in sms_rows]
