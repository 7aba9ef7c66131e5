"""The writer on SQLite: batches in one dedicated thread, the per-email rows straight to the
sqlite3 driver with the statements and bind conversions SQLAlchemy derives from tables.py.

Why: SQLite writes one transaction at a time anyway, and most of an email's cost was
SQLAlchemy's per-statement work and aiosqlite's thread hand-offs (bench/). Here a whole batch
costs one hand-off; the rows of each email (emailId claim, email, SMS, replies) go to the
driver as plain values, and so do the batch's updates (debit, fault uses, SMS counts),
compiled once from the Core statements both databases share; the account and fault reads
stay Core statements, skipped when the last batch's are still true (data_version).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, repeat
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, create_engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator, TypeEngine

from gateway.core.model import Account, Fault, Intake, ReplyState, RuleSettings
from gateway.store import account_snapshot, by_number, json_columns, sms_ids
from gateway.store.batch import (
    ACTIVE_FAULTS,
    DEBIT,
    SMS_FIELDS,
    SPEND_FAULT,
    BatchWriter,
    Row,
    SmsRows,
    Statements,
    Written,
    fault_from_row,
)
from gateway.store.sqlite_tuning import WRITE, tune_sqlite
from gateway.store.tables import email_ids, emails, replies, sms, sms_counts, sms_groups

T = TypeVar("T")
log = logging.getLogger("mail2sms.writer")
_UNSEEN = object()
# The SMS counts of the batch added to those kept (tables.sms_counts), one row per account.
_COUNTED = sqlite.insert(sms_counts)
_COUNT_SMS = _COUNTED.on_conflict_do_update(
    index_elements=[sms_counts.c.account_id, sms_counts.c.channel],
    set_={"total": sms_counts.c.total + _COUNTED.excluded.total},
)


class DriverInsert:
    """An INSERT of every column of a table but its generated id, for the sqlite3 driver:
    the SQL and the column order as SQLAlchemy compiles them, and each column's bind
    conversion (aware datetimes → UTC text, JSON → text) as its type in tables.py defines it."""

    def __init__(
        self,
        table: Table,
        dialect: Dialect,
        *,
        ignore_conflict: bool = False,
        fields: Sequence[str] = (),
        with_id: bool = False,
    ) -> None:
        names = [c.name for c in table.c if with_id or c is not table.autoincrement_column]
        statement = sqlite.insert(table)
        if ignore_conflict:
            statement = statement.on_conflict_do_nothing()
        compiled = statement.compile(dialect=dialect, column_keys=names)
        self.sql = str(compiled)
        self.columns: tuple[str, ...] = tuple(compiled.positiontup or ())
        assert sorted(self.columns) == sorted(names), (self.columns, names)
        self._conversions = [
            _Conversion(index, process, _immutable(table.c[name].type))
            for index, name in enumerate(self.columns)
            if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            is not None
        ]
        # The columns that grouped rows take from each of their objects (grouped_values).
        self._own = [operator.attrgetter(name) if name in fields else None for name in self.columns]
        self._converted: list[_Conversion | None] = [None] * len(self.columns)
        for conversion in self._conversions:
            self._converted[conversion.index] = conversion

    def values(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows as the driver takes them, a tuple of values in the SQL's column order.
        Built column by column and zipped: tuples of plain values leave the garbage
        collector's watch, lists never do (a batch holds thousands of rows)."""
        by_column = [[row[name] for row in rows] for name in self.columns]
        for conversion in self._conversions:
            by_column[conversion.index] = conversion.apply(by_column[conversion.index])
        return list(zip(*by_column, strict=True))

    def grouped_values(
        self, groups: Sequence[SmsRows], begins: Sequence[int]
    ) -> list[tuple[Any, ...]]:
        """`values` of the SMS rows of these groups, each group's ids from its first in
        `begins` on (one block: sms_ids.blocks), each column
        taken whole from a group: the attribute of that name of each of its SMS for the
        `fields`, else the value its rows share (converted once for them all: a batch of 8
        one-SMS emails costs 13 columns, not 8 rows of 13)."""
        sizes = [len(group.sent) for group in groups]
        by_column: list[list[Any]] = []
        for name, own, conversion in zip(self.columns, self._own, self._converted, strict=True):
            if name == "id":
                by_column.append(list(range(begins[0], begins[0] + sum(sizes))))
            elif name == "group_id":
                by_column.append(list(chain.from_iterable(map(repeat, begins, sizes))))
            elif own is not None:
                values = list(chain.from_iterable(map(own, group.sent) for group in groups))
                by_column.append(values if conversion is None else conversion.apply(values))
            else:
                shared = [group.shared[name] for group in groups]
                if conversion is not None:
                    shared = conversion.apply(shared)
                by_column.append(list(chain.from_iterable(map(repeat, shared, sizes))))
        return list(zip(*by_column, strict=True))


@dataclass(slots=True)
class _Conversion:
    index: int
    process: Callable[[Any], Any]
    immutable: bool  # a value of this column is never changed in place: reuse its conversion
    last: tuple[Any, Any] = (_UNSEEN, None)

    def apply(self, values: list[Any]) -> list[Any]:
        # The rows of a batch share one instant (its `now`): converted once, not per row.
        process = self.process
        seen, converted = self.last if self.immutable else (_UNSEEN, None)
        out = []
        for value in values:
            if value is not seen:
                seen, converted = value, process(value)
            out.append(converted)
        if self.immutable:
            self.last = (seen, converted)
        return out


def _immutable(column_type: TypeEngine[Any]) -> bool:
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return False
    return python_type in (datetime, str, bytes, int, float, bool)


class DriverStatement:
    """A Core statement of plain integer parameters, compiled once for the sqlite3 driver:
    its SQL and the order its named parameters take there."""

    def __init__(self, statement: Any, dialect: Dialect, **compile_options: Any) -> None:
        compiled = statement.compile(dialect=dialect, **compile_options)
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        assert self.sql.count("?") == len(self.names), self.sql

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(params[name] for name in self.names)


class _Inserts:
    def __init__(self, dialect: Dialect) -> None:
        self.claim = DriverInsert(email_ids, dialect, ignore_conflict=True)
        self.email = DriverInsert(emails, dialect)
        self.groups = DriverInsert(sms_groups, dialect)
        self.sms = DriverInsert(sms, dialect, fields=SMS_FIELDS, with_id=True)
        self.replies = DriverInsert(replies, dialect)
        self.debit = DriverStatement(DEBIT, dialect)
        self.spend_fault = DriverStatement(SPEND_FAULT, dialect)
        self.count_sms = DriverStatement(
            _COUNT_SMS, dialect, column_keys=["account_id", "channel", "total"]
        )


@dataclass(slots=True)
class _Known:
    """What the last committed batch left of the accounts it read and of the active faults:
    still true for the next batch as long as no other connection committed in between, which
    SQLite's data_version tells (it changes only with another connection's commits)."""

    version: int
    accounts: dict[str, Account | None]
    faults: tuple[Fault, ...]


_KNOWN_ACCOUNTS = 1024  # keyids remembered at most (unknown ones included)
# The writer's page cache (SQLite's default is 2 MiB). A 500-number request touches a leaf of
# the `sms` (to, id) index per distinct number, ~500 pages, which the default cache cannot keep
# beside the other indexes: each batch read them again. Measured with 1,000,000 SMS stored
# (`python -m bench.floor --stored 1000000`): 6.3 → 5.0 ms of CPU per 500-SMS email with
# 16 MiB, no better with 32 MiB; the writer process's peak RSS grows by about that much.
_CACHE_KIB = 16 * 1024
# The WAL's size, in pages, at which the writer's commit copies it back into the database
# (SQLite's default: 1000). A 500-number request rewrites the same ~500 index leaves batch
# after batch: a checkpoint copies each page once however many times the WAL holds it, so
# fewer, larger ones copy far less. Measured (`bench.floor --stored 300000 --batches 150`):
# 5.8 ms → 4.7 ms of wall time per 500-SMS email, no better with none at all; the WAL file
# then stays up to ~40 MiB (a reset, `DELETE /api/v1/messages`, gives it back).
_CHECKPOINT_PAGES = 10_000


class SqliteStatements:
    """The batch's statements on SQLite. Its write transaction (BEGIN IMMEDIATE) already
    excludes every other writer: nothing needs a row lock. The accounts and faults the last
    batch left are read from `known` when nothing else wrote since."""

    def __init__(self, conn: Connection, inserts: _Inserts, known: _Known | None) -> None:
        self._conn = conn
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        self._driver = driver
        self._inserts = inserts
        self.version: int = driver.execute("PRAGMA data_version").fetchone()[0]
        self._known = known if known is not None and known.version == self.version else None
        self.left: _Known | None = None
        self.sms_added = 0

    def lock_accounts(self, keyids: Sequence[str]) -> None:
        return None

    def account(self, keyid: str) -> Account | None:
        if self._known is not None and keyid in self._known.accounts:
            return self._known.accounts[keyid]
        return account_snapshot.read_snapshot(self._conn, keyid, lock=False)

    def active_faults(self) -> list[Fault]:
        if self._known is not None:
            return list(self._known.faults)
        return [fault_from_row(row) for row in self._conn.execute(ACTIVE_FAULTS)]

    def claim(self, account_id: int, email_id: str) -> bool:
        insert = self._inserts.claim
        (values,) = insert.values([{"account_id": account_id, "email_id": email_id}])
        return bool(self._driver.execute(insert.sql, values).rowcount == 1)

    def insert_email(self, row: Row) -> int:
        insert = self._inserts.email
        email_row = self._driver.execute(insert.sql, insert.values([row])[0]).lastrowid
        assert email_row is not None
        return email_row

    def insert_sms(self, groups: Sequence[SmsRows]) -> None:
        inserts = self._inserts
        sizes = [len(group.sent) for group in groups]
        begins = sms_ids.blocks(self._driver, sizes)
        self.sms_added += sum(sizes)
        rows = [group.group(begin) for group, begin in zip(groups, begins, strict=True)]
        self._driver.executemany(inserts.groups.sql, inserts.groups.values(rows))
        self._driver.executemany(inserts.sms.sql, inserts.sms.grouped_values(groups, begins))

    def insert_replies(self, rows: Sequence[Row]) -> None:
        self._driver.executemany(self._inserts.replies.sql, self._inserts.replies.values(rows))

    def debit(self, account_id: int, parts: int) -> bool:
        debit = self._inserts.debit
        values = debit.values({"account": account_id, "parts": parts})
        return bool(self._driver.execute(debit.sql, values).rowcount == 1)

    def spend_faults(self, used: Mapping[int, int]) -> None:
        spend = self._inserts.spend_fault
        rows = [spend.values({"fault": k, "used": n}) for k, n in used.items()]
        self._driver.executemany(spend.sql, rows)

    def count_sms(self, counts: Mapping[tuple[int, str], int]) -> None:
        count = self._inserts.count_sms
        rows = [
            count.values({"account_id": a, "channel": c, "total": n})
            for (a, c), n in counts.items()
        ]
        self._driver.executemany(count.sql, rows)

    def remember(self, accounts: Mapping[str, Account | None], faults: Sequence[Fault]) -> None:
        kept = dict(self._known.accounts) if self._known is not None else {}
        if len(kept) + len(accounts) > _KNOWN_ACCOUNTS:
            kept = {}
        kept.update(accounts)
        self.left = _Known(self.version, kept, tuple(faults))


def _writer_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")


class SqliteWriter(BatchWriter):
    """Each batch in one transaction on a plain pysqlite connection, in one dedicated thread."""

    def __init__(self, url: URL, rules: RuleSettings, reply_state: ReplyState) -> None:
        super().__init__(rules, reply_state)
        self._engine = create_engine(
            url.set(drivername="sqlite+pysqlite"),
            connect_args={"timeout": 30, "check_same_thread": False},
            poolclass=StaticPool,
            **json_columns.ENGINE_OPTIONS,
        )
        tune_sqlite(self._engine)
        event.listen(self._engine, "connect", _writer_pragmas)
        self._inserts = _Inserts(self._engine.dialect)
        self._known: _Known | None = None
        self._waiting: int | None = None  # SMS without their entry in sms_to (None: unknown)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mail2sms-sqlite")
        self._connection: Connection | None = None  # the writer's own (`_connected`)

    async def _transaction(self, work: Callable[[Statements], T]) -> T:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._thread, self.transaction, work)
        if self.catching_up_due():
            await loop.run_in_executor(self._thread, self.catch_up)
        return result

    def transaction(self, work: Callable[[Statements], T]) -> T:
        """Run `work` in one write transaction and commit it, in the calling thread."""
        known, self._known = self._known, None  # until this batch is committed
        with self._connected() as connection, connection.begin():
            statements = SqliteStatements(connection, self._inserts, known)
            result = work(statements)
        self._known = statements.left
        if self._waiting is not None:
            self._waiting += statements.sms_added
        return result

    @contextlib.contextmanager
    def _connected(self) -> Iterator[Connection]:
        """The writer's connection, kept from one transaction to the next: taken from the pool
        and given back (with its rollback) around each batch, it cost ~0.1 ms of the ~1.7 ms
        of CPU a batch of four 1-recipient emails takes in the writer process (bench/). Only
        its transactions use it, each one whole (`begin`): between them it holds no snapshot
        that would keep the WAL from starting over. After a failure it is closed, and the
        next transaction opens a new one."""
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(**{WRITE: True})
        try:
            yield self._connection
        except BaseException:
            self._disconnect()
            raise

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def catching_up_due(self, at_least: int | None = None) -> bool:
        """Whether `catch_up(at_least)` may have entries to add (an estimate: it checks)."""
        enough = by_number.TAIL if at_least is None else at_least
        return self._waiting is None or self._waiting >= enough

    def catch_up(self, at_least: int | None = None) -> int:
        """The entries of the newest SMS added to sms_to in their own transaction, once
        `at_least` wait (by_number.TAIL by default); how many SMS ids that covered. A failure
        is logged: the reads still find those SMS, in the tail, and the next batch tries again."""
        enough = by_number.TAIL if at_least is None else at_least
        try:
            with self._connected() as connection, connection.begin():
                covered, waiting = by_number.catch_up(connection, enough)
        except Exception:
            log.exception("the entries of the newest SMS could not be added to sms_to")
            return 0
        self._waiting = waiting
        return covered

    def apply_here(self, batch: Sequence[Intake], now: datetime) -> list[Written]:
        """The batch applied and committed in the calling thread (the writer process's way)."""
        return self.apply_now(batch, now, self.transaction)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._disconnect()
        self._engine.dispose()
