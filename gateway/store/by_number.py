"""The SMS of a number: `sms_to` (number, id), which SQLite's writer fills behind the SMS.

Why: an index on the SMS's number took each SMS's entry at a random place of a big tree: a
500-number request dirtied ~500 of its pages, written again at every commit, and that was a
third of the writer's time (`bench.run --phases throughput`: 500 numbers 159–170 → 237–251
emails/s without it). On SQLite the entries of the newest SMS wait until `TAIL` of them do,
then go in at once, sorted (`catch_up`, the writer's, after a batch): one write of each page
for all of them. `id_counters` row 'sms_to' says up to which SMS id the table is complete; a
read finds a number's SMS there up to that id, and the newer ones by walking them (the tail,
at most `TAIL` and one batch: ~1 ms for 20,000). PostgreSQL's writers add an SMS's entry with
it (its replicas write at once: no id would say "complete up to here"): no row 'sms_to' there,
no tail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, FromClause, and_, func, insert, select

from gateway.store.tables import id_counters, sms, sms_to

# SMS whose entries wait before they are written (the tail a read walks).
TAIL = 50_000
_COUNTER = "sms_to"
_LAST_SMS = "SELECT last FROM id_counters WHERE name = 'sms'"
_LAST_ENTRY = "SELECT last FROM id_counters WHERE name = 'sms_to'"
_CATCH_UP = (
    'INSERT INTO sms_to ("to", id) SELECT "to", id FROM sms WHERE id > ? AND id <= ? '
    'ORDER BY "to", id'
)
_MOVE_ON = (
    "INSERT INTO id_counters (name, last) VALUES ('sms_to', ?) "
    "ON CONFLICT (name) DO UPDATE SET last = excluded.last"
)


def has_tail(dialect: str) -> bool:
    """Whether SMS may wait for their entries on this database (SQLite's writer adds them
    behind; PostgreSQL's, with each SMS)."""
    return dialect == "sqlite"


def pending(conn: Connection) -> tuple[int, int]:
    """SQLite: the last SMS id with its entry, and the last SMS id given."""
    done = conn.exec_driver_sql(_LAST_ENTRY).scalar()
    given = conn.exec_driver_sql(_LAST_SMS).scalar()
    return int(done or 0), int(given or 0)


def catch_up(conn: Connection, at_least: int) -> tuple[int, int]:
    """SQLite, in the caller's write transaction: the entries of every SMS after the last with
    one, sorted, if `at_least` SMS ids wait (and one does). How many ids that covered, and how
    many still wait."""
    done, given = pending(conn)
    waiting = given - done
    if waiting < max(at_least, 1):
        return 0, waiting
    conn.exec_driver_sql(_CATCH_UP, (done, given))
    conn.exec_driver_sql(_MOVE_ON, (given,))
    return waiting, 0


def _complete_to() -> ColumnElement[Any]:
    # No row yet: no SMS has its entry.
    last = select(id_counters.c.last).where(id_counters.c.name == _COUNTER).scalar_subquery()
    return func.coalesce(last, 0)


def in_tail(number: str) -> ColumnElement[bool]:
    """The SMS to `number` that have no entry yet (SQLite's newest), on `sms`."""
    return and_(sms.c.id > _complete_to(), sms.c.to == number)


def with_entry(source: FromClause) -> FromClause:
    """`source` (which holds `sms`) from the entries: filter it with `sms_to.c.to`."""
    return sms_to.join(source, sms.c.id == sms_to.c.id)


def add(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """The entries of these SMS rows (each with its `to` and `id`) in the caller's transaction,
    on PostgreSQL; on SQLite the writer adds them later (`catch_up`)."""
    if rows and not has_tail(conn.dialect.name):
        conn.execute(insert(sms_to), [{"to": row["to"], "id": row["id"]} for row in rows])
