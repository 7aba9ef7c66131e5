"""The writer on PostgreSQL: each batch in one transaction through the async engine (asyncpg),
SQLAlchemy Core statements, the rows that several replicas could race for locked."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.model import Account, Fault, ReplyState, RuleSettings
from gateway.store import account_snapshot, sms_ids
from gateway.store.batch import (
    ACTIVE_FAULTS,
    DEBIT,
    SPEND_FAULT,
    BatchWriter,
    Row,
    SmsRows,
    Statements,
    fault_from_row,
)
from gateway.store.engine import write_transaction
from gateway.store.tables import accounts as accounts_table
from gateway.store.tables import email_ids, emails, replies, sms, sms_counts, sms_groups

T = TypeVar("T")

# Statements built once: building them per email was a large part of its cost (bench/).
_LOCK_ACCOUNTS = (
    select(accounts_table.c.id)
    .where(accounts_table.c.keyid.in_(bindparam("keyids", expanding=True)))
    .order_by(accounts_table.c.id)
    .with_for_update()
)
# Faults locked in id order, so that replicas never both spend a fault's last use.
_ACTIVE_FAULTS_LOCKED = ACTIVE_FAULTS.with_for_update()
_CLAIM = postgresql.insert(email_ids).on_conflict_do_nothing()
_INSERT_EMAIL = insert(emails).returning(emails.c.id)
_INSERT_GROUP = insert(sms_groups)
_INSERT_SMS = insert(sms)
_INSERT_REPLY = insert(replies)
# The SMS counts of the batch added to those kept (tables.sms_counts); the rows it locks are
# those of accounts the batch already holds (_LOCK_ACCOUNTS).
_COUNTED = postgresql.insert(sms_counts)
_COUNT_SMS = _COUNTED.on_conflict_do_update(
    index_elements=[sms_counts.c.account_id, sms_counts.c.channel],
    set_={"total": sms_counts.c.total + _COUNTED.excluded.total},
)


class PostgresStatements:
    """The batch's statements on PostgreSQL; the emailId's primary key makes the claim exact
    across replicas, and the account and fault rows are locked until the commit."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock_accounts(self, keyids: Sequence[str]) -> None:
        if keyids:
            self._conn.execute(_LOCK_ACCOUNTS, {"keyids": list(keyids)})

    def account(self, keyid: str) -> Account | None:
        return account_snapshot.read_snapshot(self._conn, keyid, lock=True)

    def active_faults(self) -> list[Fault]:
        return [fault_from_row(row) for row in self._conn.execute(_ACTIVE_FAULTS_LOCKED)]

    def claim(self, account_id: int, email_id: str) -> bool:
        params = {"account_id": account_id, "email_id": email_id}
        return self._conn.execute(_CLAIM, params).rowcount == 1

    def insert_email(self, row: Row) -> int:
        inserted: int = self._conn.execute(_INSERT_EMAIL, row).scalar_one()
        return inserted

    def insert_sms(self, groups: Sequence[SmsRows]) -> None:
        begins = sms_ids.blocks(self._conn, [len(group.sent) for group in groups])
        self._conn.execute(_INSERT_GROUP, [g.group(b) for g, b in zip(groups, begins, strict=True)])
        rows = [row for g, b in zip(groups, begins, strict=True) for row in g.rows(b)]
        self._conn.execute(_INSERT_SMS, rows)

    def insert_replies(self, rows: Sequence[Row]) -> None:
        self._conn.execute(_INSERT_REPLY, rows)

    def debit(self, account_id: int, parts: int) -> bool:
        return self._conn.execute(DEBIT, {"account": account_id, "parts": parts}).rowcount == 1

    def spend_faults(self, used: Mapping[int, int]) -> None:
        self._conn.execute(SPEND_FAULT, [{"fault": k, "used": n} for k, n in used.items()])

    def count_sms(self, counts: Mapping[tuple[int, str], int]) -> None:
        rows = [{"account_id": a, "channel": c, "total": n} for (a, c), n in counts.items()]
        self._conn.execute(_COUNT_SMS, rows)

    def remember(self, accounts: Mapping[str, Account | None], faults: Sequence[Fault]) -> None:
        return None  # every batch reads (and locks) them again


class PostgresWriter(BatchWriter):
    """Each batch in one transaction on the event loop; SQLAlchemy's greenlet bridge runs
    the statements on asyncpg."""

    def __init__(self, engine: AsyncEngine, rules: RuleSettings, reply_state: ReplyState) -> None:
        super().__init__(rules, reply_state)
        self._engine = engine

    async def _transaction(self, work: Callable[[Statements], T]) -> T:
        async with write_transaction(self._engine) as connection:
            return await connection.run_sync(lambda sync: work(PostgresStatements(sync)))

    def close(self) -> None:
        return None  # the engine and its pool are the application's
