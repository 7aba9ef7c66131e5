"""The SMS of a number: `sms_to` (run, number, id), which SQLite's writer fills behind the SMS.

Why: an index on the SMS's number took each SMS's entry at a random place of a big tree: a
500-number request dirtied ~500 of its pages, written again at every commit (`bench.floor`:
1.4 of the 3.3 ms it took to store a 500-SMS request; 1.85 ms now). Entries added
later in bulk to the same tree cost nearly as much (each bulk insert rewrote the pages that end
every number's entries: 9–15 MB of WAL for 20,000–50,000 SMS). So on SQLite the entries of the
newest SMS wait until `TAIL` of them do, then go in at once as a new *run*: keyed (run, number,
id), where run is the first SMS id it covers, they all land after every entry already there
(an append: ~0.65 µs an SMS, 1.4 MB of WAL for 50,000). `sms_to_runs` lists the runs and
`id_counters` row 'sms_to' the last SMS id entered.

A read finds a number's SMS in each run (one B-tree search a run: 1,000,000 SMS make 20) and
the newer ones by walking them (the tail: at most `TAIL` and one batch, ~1–2 ms); newest first
is run by run, each newest first, after the tail. PostgreSQL keeps the index on the number
(tables.py): its replicas write at once (no id could say "entered up to here"), and its
index costs it less than a second table would (500 numbers: 71 → 63 emails/s with sms_to).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    and_,
    delete,
    exists,
    func,
    select,
)

from gateway.store import sms_ids
from gateway.store.tables import id_counters, sms, sms_to, sms_to_runs

# SMS whose entries wait before they are written (the tail a read walks).
TAIL = 50_000
_COUNTER = "sms_to"
_CATCH_UP = (
    'INSERT INTO sms_to (run, "to", id) SELECT ?, "to", id FROM sms WHERE id > ? AND id <= ? '
    'ORDER BY "to", id'
)
_NEW_RUN = "INSERT INTO sms_to_runs (run) VALUES (?)"


def has_tail(dialect: str) -> bool:
    """Whether a number's SMS are found from sms_to and the tail (SQLite) rather than by the
    index on the number (PostgreSQL)."""
    return dialect == "sqlite"


def pending(conn: Connection) -> tuple[int, int]:
    """SQLite: the last SMS id entered, and the last SMS id given."""
    return sms_ids.counter(conn, _COUNTER), sms_ids.counter(conn, sms_ids.SMS)


def catch_up(conn: Connection, at_least: int) -> tuple[int, int]:
    """SQLite, in the caller's write transaction: the entries of every SMS after the last one
    entered, as one new run, if `at_least` SMS ids wait (and one does). How many ids that
    covered, and how many still wait."""
    done, given = pending(conn)
    waiting = given - done
    if waiting < max(at_least, 1):
        return 0, waiting
    if conn.exec_driver_sql(_CATCH_UP, (done + 1, done, given)).rowcount:
        conn.exec_driver_sql(_NEW_RUN, (done + 1,))  # none for ids whose SMS are gone (reset)
    sms_ids.move_counter(conn, _COUNTER, given)
    return waiting, 0


# Built once: a page's statement is built for each request (what varies is the number).
_LAST = select(id_counters.c.last).where(id_counters.c.name == _COUNTER).scalar_subquery()
_NEWEST = sms.c.id > func.coalesce(_LAST, 0)
_IN_A_RUN = sms_to.c.run.in_(select(sms_to_runs.c.run))


def in_tail(number: str) -> ColumnElement[bool]:
    """The SMS to `number` not entered yet (SQLite's newest), on `sms`."""
    return and_(_NEWEST, sms.c.to == number)


def entered(number: str) -> ColumnElement[bool]:
    """The entries of `number`, in every run (each run's found by its key)."""
    return and_(_IN_A_RUN, sms_to.c.to == number)


# The key order of a number's entries, which is their SMS ids' order (runs cover ascending
# ranges of ids).
ENTRY_ORDER = (sms_to.c.run, sms_to.c.id)


@functools.cache
def with_entry(source: FromClause) -> FromClause:
    """`source` (which holds `sms`) from the entries."""
    return sms_to.join(source, sms.c.id == sms_to.c.id)


def entry_of_sms() -> tuple[ColumnElement[Any], ...]:
    """The key in sms_to an SMS row's entry has (or would have), for a select on `sms`."""
    in_run = select(func.max(sms_to_runs.c.run)).where(sms_to_runs.c.run <= sms.c.id)
    return (func.coalesce(in_run.scalar_subquery(), 0), sms.c.to, sms.c.id)


def forget_empty_runs() -> Any:
    """The statement that drops the runs left without entries (after a retention)."""
    used = exists().where(sms_to.c.run == sms_to_runs.c.run)
    return delete(sms_to_runs).where(~used)
