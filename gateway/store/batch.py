"""One batch of emails in one write transaction, whatever the database: each account read once,
the core asked about each email in turn, the rows of the whole batch written once at the end.

A database plugs in its `Statements` (sqlite_writer.py, postgres_writer.py) and the way it
runs a transaction (`BatchWriter._transaction`); everything else here is the same for both.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import String, bindparam, select, update

from gateway.core import outcome
from gateway.core.model import (
    Account,
    Channel,
    EmailStatus,
    Fault,
    HttpCall,
    Inbound,
    Intake,
    ReplyState,
    RuleSettings,
    Sms,
    SmsState,
)
from gateway.core.outcome import Outcome
from gateway.errors import ProcessingError
from gateway.ratelimit import RateLimiter
from gateway.store import sms_ids
from gateway.store.tables import accounts, emails, faults

Row = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Written:
    """What a channel answers from once the email or call is committed: its row in `emails`
    (None for an HTTP call), its status and each recipient's code in request order, with the
    SMS parts each one cost; `code` is a refusal's (1, 3, 14, 30). Only this leaves the
    writer: the whole Outcome (hundreds of SMS) costs the event loop more to free than to
    build."""

    email_row: int | None
    status: EmailStatus
    codes: tuple[int, ...]
    parts: tuple[int, ...] = ()
    code: int | None = None


# What a writer's `start` calls with a batch's outcome (writer.py): as `apply` returns or raises.
Answered = Callable[[list[Written] | Exception], None]

# The columns of `sms` that an SMS gives (its fields of the same name); its request gives the rest.
SMS_FIELDS = ("to", "sender", "text", "parts", "encoding", "tracker")


@dataclass(frozen=True, slots=True)
class SmsRows:
    """The SMS of one decided request: the columns they share (their group's, `GROUP_FIELDS`,
    and the `state` and `due_at` each one starts with), and its SMS in order. Given to the
    database as they are: a driver can build its rows column by column."""

    shared: Row
    sent: tuple[Sms, ...]

    def group(self, first: int) -> Row:
        """The row of `sms_groups`, its SMS given the ids `first` onwards."""
        return sms_ids.group_row(first, len(self.sent), self.shared)

    def rows(self, first: int) -> list[Row]:
        state, due_at = self.shared["state"], self.shared["due_at"]
        return [
            {
                "id": first + k,
                "group_id": first,
                "state": state,
                "due_at": due_at,
                **{name: getattr(one, name) for name in SMS_FIELDS},
            }
            for k, one in enumerate(self.sent)
        ]


class Statements(Protocol):
    """What one database runs inside a batch's write transaction."""

    def lock_accounts(self, keyids: Sequence[str]) -> None:
        """Hold the rows of these accounts until the commit, taken in id order."""

    def account(self, keyid: str) -> Account | None:
        """The account as the rules see it, held until the commit."""

    def active_faults(self) -> list[Fault]:
        """The faults with uses left, in id order, held until the commit."""

    def claim(self, account_id: int, email_id: str) -> bool:
        """Claim the emailId for the account; False when it was claimed before."""

    def insert_email(self, row: Row) -> int:
        """Insert the email's row; its id."""

    def insert_sms(self, groups: Sequence[SmsRows]) -> None:
        """Insert the groups and their SMS, each group's ids in one block (sms_ids.py)."""

    def insert_replies(self, rows: Sequence[Row]) -> None: ...

    def debit(self, account_id: int, parts: int) -> bool:
        """Take `parts` from the credit if it covers them; False (nothing taken) otherwise."""

    def spend_faults(self, used: Mapping[int, int]) -> None: ...

    def count_sms(self, counts: Mapping[tuple[int, str], int]) -> None:
        """Add to the SMS counted per (account id, channel): one upsert each."""

    def remember(self, accounts: Mapping[str, Account | None], faults: Sequence[Fault]) -> None:
        """What the batch leaves of the accounts it read and of the active faults, as they
        will be once it is committed (a database may give them to the next batch)."""


# What one transaction does with a batch: every email applied, their answers in order.
Work = Callable[[Statements], list[Written]]

# The Core statements both databases share (PostgreSQL runs them; SQLite compiles them once
# for its driver, sqlite_writer.py).
ACTIVE_FAULTS = (
    select(faults.c.id, faults.c.code, faults.c.remaining, faults.c.number, faults.c.keyid)
    .where(faults.c.remaining > 0)
    .order_by(faults.c.id)
)
SPEND_FAULT = (
    update(faults)
    .where(faults.c.id == bindparam("fault"))
    .values(remaining=faults.c.remaining - bindparam("used"))
)
# Takes `parts` from the credit only if it covers them: never below zero, whoever races.
DEBIT = (
    update(accounts)
    .where(accounts.c.id == bindparam("account"), accounts.c.credit >= bindparam("parts"))
    .values(credit=accounts.c.credit - bindparam("parts"))
)
# What an email row keeps of the strings it is given: the column's length (tables.py).
_EMAIL_LENGTHS = {
    c.name: c.type.length for c in emails.c if isinstance(c.type, String) and c.type.length
}


_RAW_CUT = (EmailStatus.REFUSED, EmailStatus.NOT_PROCESSED)


def fault_from_row(row: Any) -> Fault:
    return Fault(
        id=row.id, code=row.code, remaining=row.remaining, number=row.number, keyid=row.keyid
    )


class BatchWriter(ABC):
    """Applies a batch in one transaction of its database; what a rolled-back batch spent
    of the rate limit is given back (nothing of it was sent). One batch at a time."""

    depth = 1

    def __init__(self, rules: RuleSettings, reply_state: ReplyState) -> None:
        self._rules = rules
        self._reply_state = reply_state
        self._limiter = RateLimiter()

    def prepare(self, item: Intake) -> Intake:
        """The item as `apply` takes it: itself (see writer.py)."""
        return item

    def start(self, batch: Sequence[Intake], now: datetime, answered: Answered) -> bool:
        """Never: these writers take a batch through `apply` (see writer.py)."""
        return False

    async def apply(self, batch: Sequence[Intake], now: datetime) -> list[Written]:
        saved = self._limiter.checkpoint()
        try:
            return await self._transaction(self.work(batch, now))
        except Exception:
            self._limiter.restore(saved)
            raise

    def apply_now(
        self, batch: Sequence[Intake], now: datetime, transaction: Callable[[Work], list[Written]]
    ) -> list[Written]:
        """`apply` for a caller that runs the transaction itself, synchronously."""
        saved = self._limiter.checkpoint()
        try:
            return transaction(self.work(batch, now))
        except Exception:
            self._limiter.restore(saved)
            raise

    def work(self, batch: Sequence[Intake], now: datetime) -> Work:
        """What one transaction does with the batch."""
        return lambda db: apply_batch(db, batch, now, self._rules, self._limiter, self._reply_state)

    @abstractmethod
    async def _transaction(self, work: Callable[[Statements], T]) -> T:
        """Run `work` inside one write transaction and commit it; raise if anything failed."""

    @abstractmethod
    def close(self) -> None:
        """Release what the writer holds of its own (threads, connections)."""


def apply_batch(
    db: Statements,
    batch: Sequence[Intake],
    now: datetime,
    rules: RuleSettings,
    limiter: RateLimiter,
    reply_state: ReplyState,
) -> list[Written]:
    """Inside the batch's transaction; raises if any email fails (all of it then rolls back)."""
    # Each email holds its account anyway; taken one by one in the batch's order, two
    # replicas whose batches hold the same accounts in another order would deadlock.
    db.lock_accounts(sorted({key for key in map(outcome.account_key, batch) if key}))
    book = _Book(db, now, rules, limiter, reply_state)
    written = [
        book.apply_call(item) if isinstance(item, HttpCall) else book.apply(item)
        for item in batch
    ]
    book.flush()
    return written


class _Book:
    """What one batch reads once and writes once: the account snapshots and active faults
    (kept up to date as emails spend them), and the SMS, replies, debits and fault uses."""

    def __init__(
        self,
        db: Statements,
        now: datetime,
        rules: RuleSettings,
        limiter: RateLimiter,
        reply_state: ReplyState,
    ) -> None:
        self._db = db
        self._now = now
        self._rules = rules
        self._limiter = limiter
        self._reply_state = reply_state.value
        self._faults = {fault.id: fault for fault in db.active_faults()}
        self._active = tuple(self._faults.values())
        self._accounts: dict[str, Account | None] = {}
        self._debits: dict[int, int] = {}
        self._counts: dict[tuple[int, str], int] = {}  # SMS per (account id, channel)
        self._spent: dict[int, int] = {}
        self._sms: list[SmsRows] = []
        self._replies: list[Row] = []

    def apply(self, inbound: Inbound) -> Written:
        key = outcome.account_key(inbound)
        account = self._account(key) if key else None
        email_id = outcome.claim_for(inbound, account)
        claimed = (
            email_id is not None and account is not None and self._db.claim(account.id, email_id)
        )
        result = outcome.decide(
            inbound,
            account,
            claimed=claimed,
            now=self._now,
            settings=self._rules,
            faults=self._active,
            rate_budget=self._limiter.budget(account) if account is not None else None,
        )
        email_row = self._db.insert_email(self._email_row(inbound, result))
        self._replies.extend(
            {
                "email_row": email_row,
                "kind": reply.kind.value,
                "to": reply.to,
                "email_id": result.email_id,
                "body": reply.content,  # a Not report as what it says (tables.ReplyBody)
                "state": self._reply_state,
                "attempts": 0,
                "next_attempt_at": None,
                "last_error": "",
                "created_at": self._now,
                "delivered_at": None,
            }
            for reply in result.replies
        )
        if account is not None and result.status is EmailStatus.PROCESSED:
            self._decided(account, result, email_row)
        return Written(email_row, result.status, tuple(r.code for r in result.results))

    def apply_call(self, call: HttpCall) -> Written:
        """An HTTP API send: no email row, no emailId, no reply; its SMS are `scheduled` until
        their due time when the call gave one (date_envoi)."""
        key = outcome.account_key(call)
        account = self._account(key) if key else None
        result = outcome.decide_call(
            call,
            account,
            now=self._now,
            settings=self._rules,
            faults=self._active,
            rate_budget=self._limiter.budget(account) if account is not None else None,
        )
        if account is not None and result.status is EmailStatus.PROCESSED:
            self._decided(account, result, None, Channel.HTTP, call.request.due_at)
        return Written(
            None,
            result.status,
            tuple(r.code for r in result.results),
            tuple(r.sms.parts if r.sms is not None else 0 for r in result.results),
            result.code,
        )

    def _account(self, keyid: str) -> Account | None:
        if keyid not in self._accounts:
            self._accounts[keyid] = self._db.account(keyid)
        return self._accounts[keyid]

    def _email_row(self, inbound: Inbound, result: Outcome) -> Row:
        content = inbound.content
        row: Row = {
            "received_at": self._now,
            "status": result.status.value,
            "reason": result.reason,
            "code": result.code,
            "email_id": result.email_id,
            "account_id": result.account_id,
            "keyid": result.keyid,
            "sender": content.from_address,
            "envelope_from": inbound.envelope_from,
            "client_ip": inbound.client_ip,
            "message_id": content.message_id,
            "subject": content.subject,
            # Each recipient's number and code: its message is the code's, added when read
            # (reads.py), not written 500 times a request (23 of a CSV request's 196 KB).
            "results": [{"tel": r.tel, "code": r.code} for r in result.results],
            "warnings": list(result.warnings),
            "raw": inbound.raw,
        }
        kept = self._rules.raw_max_bytes
        if result.status in _RAW_CUT and len(inbound.raw) > kept:
            # Refused mail is anyone's to send: the disk it takes stays bounded (SPEC §16).
            row["raw"] = inbound.raw[:kept]
            size = len(inbound.raw)
            row["warnings"].append(f"raw message cut to its first {kept} of {size} bytes")
        for name, length in _EMAIL_LENGTHS.items():
            value = row[name]
            if value is not None and len(value) > length:
                row[name] = value[:length]
        return row

    def _decided(
        self,
        account: Account,
        result: Outcome,
        email_row: int | None,
        channel: Channel = Channel.MAIL,
        due_at: datetime | None = None,
    ) -> None:
        """Record what a decided request sends and spends, and what the next ones see of it."""
        state = (SmsState.SCHEDULED if due_at is not None else SmsState.SENT).value
        sent = result.sms
        account_id, via = account.id, channel.value
        if sent:
            shared = {
                "email_row": email_row,
                "account_id": account_id,
                "email_id": result.email_id,
                "created_at": self._now,
                "channel": via,
                "state": state,
                "due_at": due_at,
            }
            self._sms.append(SmsRows(shared, sent))
            counted = (account_id, via)
            self._counts[counted] = self._counts.get(counted, 0) + len(sent)
        if result.debit:
            self._limiter.spend(account, result.debit)
            self._accounts[account.keyid] = dataclasses.replace(
                account, credit=account.credit - result.debit
            )
            self._debits[account.id] = self._debits.get(account.id, 0) + result.debit
        if result.faults_used:
            for fault_id, used in result.faults_used.items():
                fault = self._faults[fault_id]
                self._faults[fault_id] = dataclasses.replace(
                    fault, remaining=fault.remaining - used
                )
                self._spent[fault_id] = self._spent.get(fault_id, 0) + used
            self._active = tuple(f for f in self._faults.values() if f.remaining > 0)

    def flush(self) -> None:
        if self._replies:
            self._db.insert_replies(self._replies)
        for account_id, parts in self._debits.items():
            if not self._db.debit(account_id, parts):
                raise ProcessingError("credit changed under the batch; it will be retried")
        if self._spent:
            self._db.spend_faults(self._spent)
        if self._counts:
            self._db.count_sms(self._counts)
        if self._sms:  # last: on PostgreSQL, its id reservation holds a lock until the commit
            self._db.insert_sms(self._sms)
        self._db.remember(self._accounts, self._active)
