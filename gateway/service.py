"""The only module that sequences core and store: an email in, one durable transaction, an outcome.

Emails that arrive together are applied by one writer task in one transaction (each in its own
SAVEPOINT, so one failing email rolls back alone) and answered only after that commit: each
`250` still means "this email and all it caused are on disk", at a fraction of the commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.clock import Clock
from gateway.config import Settings
from gateway.core import codes, envoi, mime, replies, rules
from gateway.core import request as requests
from gateway.core.model import Account, Decision, Fault, MailContent, Request, RuleSettings
from gateway.errors import ProcessingError
from gateway.events import Changes
from gateway.metrics import Metrics
from gateway.store import accounts
from gateway.store.engine import BatchRunner
from gateway.store.tables import accounts as accounts_table
from gateway.store.tables import email_ids, emails, faults, sms
from gateway.store.tables import replies as replies_table

log = logging.getLogger("mail2sms.service")

PROCESSED, DUPLICATE, REFUSED, NOT_PROCESSED = "processed", "duplicate", "refused", "not_processed"
MAX_BATCH = 64


@dataclass(frozen=True, slots=True)
class Outcome:
    email_row: int
    status: str


@dataclass(slots=True)
class _Job:
    raw: bytes
    envelope_from: str
    client_ip: str
    content: MailContent
    request: Request | None
    started: float
    future: asyncio.Future[Outcome]
    codes: list[int] = field(default_factory=list)


class RateLimiter:
    """Token buckets of SMS parts per account, in real (monotonic) time, per process."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}

    def budget(self, account: Account) -> int | None:
        if account.rate_limit <= 0:
            return None
        now = time.monotonic()
        tokens, last = self._buckets.get(account.id, (float(account.rate_limit), now))
        tokens = min(float(account.rate_limit), tokens + (now - last) * account.rate_limit)
        self._buckets[account.id] = (tokens, now)
        return int(tokens)

    def spend(self, account: Account, parts: int) -> None:
        if account.rate_limit > 0 and parts:
            tokens, last = self._buckets[account.id]
            self._buckets[account.id] = (tokens - parts, last)

    def checkpoint(self) -> dict[int, tuple[float, float]]:
        return dict(self._buckets)

    def restore(self, saved: dict[int, tuple[float, float]]) -> None:
        """Give back what a rolled-back batch spent: nothing of it was sent."""
        self._buckets = saved


class Service:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        settings: Settings,
        rules_settings: RuleSettings,
        changes: Changes,
        metrics: Metrics,
    ) -> None:
        self._runner = BatchRunner(engine)
        self._clock = clock
        self._settings = settings
        self._rules = rules_settings
        self._changes = changes
        self._metrics = metrics
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._limiter = RateLimiter()
        self._reply_state = "pending" if settings.relay.host else "kept"

    async def run(self) -> None:
        """The writer: takes every email waiting, applies them in one transaction, answers."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._apply_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def drain(self, timeout: float) -> None:
        """Wait until every email handed to the writer has been committed (or failed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)

    def close(self) -> None:
        self._runner.close()

    async def submit(self, raw: bytes, *, envelope_from: str, client_ip: str) -> Outcome:
        """Apply one email durably; raises ProcessingError when nothing of it was kept."""
        started = time.perf_counter()
        content, request = self._prepare(raw)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(
            _Job(raw, envelope_from, client_ip, content, request, started, future)
        )
        return await future

    def _prepare(self, raw: bytes) -> tuple[MailContent, Request | None]:
        limits = self._settings.limits
        content = mime.extract(raw)
        if content.text is None:
            return content, None
        parsed = envoi.parse(
            content.text,
            max_chars=limits.max_body_chars,
            max_tags=limits.max_tags,
            max_value_chars=limits.max_value_chars,
        )
        request = requests.build(
            parsed, content.attachments, max_recipients=self._rules.max_recipients
        )
        return content, request

    async def _apply_batch(self, batch: Sequence[_Job]) -> None:
        """One transaction for the batch; if it fails, each email alone, so that one bad
        email costs its own 451 and nothing of it is kept, while the others still apply."""
        now = self._clock.now()
        saved = self._limiter.checkpoint()
        try:
            outcomes: list[Outcome | Exception] = list(
                await self._runner.run(lambda conn: self._apply_all(conn, batch, now))
            )
        except Exception as exc:
            self._limiter.restore(saved)
            if len(batch) == 1:
                log.exception("email from %s could not be applied", batch[0].envelope_from)
                outcomes = [exc]
            else:
                outcomes = [await self._apply_alone(job, now) for job in batch]
        self._changes.publish(("emails", "sms", "replies"))
        finished = time.perf_counter()
        for job, outcome in zip(batch, outcomes, strict=True):
            if job.future.done():
                continue
            if isinstance(outcome, Outcome):
                self._metrics.email_done(outcome.status, job.codes, finished - job.started)
                job.future.set_result(outcome)
            else:
                job.future.set_exception(ProcessingError("the email could not be applied"))

    async def _apply_alone(self, job: _Job, now: datetime) -> Outcome | Exception:
        saved = self._limiter.checkpoint()
        try:
            (outcome,) = await self._runner.run(lambda conn: self._apply_all(conn, (job,), now))
        except Exception as exc:
            self._limiter.restore(saved)
            log.exception("email from %s could not be applied", job.envelope_from)
            return exc
        return outcome

    def _apply_all(self, conn: Connection, batch: Sequence[_Job], now: datetime) -> list[Outcome]:
        """Inside the batch's transaction (sync Core statements). Raises if any email fails."""
        _lock_accounts(conn, batch)
        book = _Book(conn)
        outcomes = []
        for job in batch:
            job.codes.clear()
            outcomes.append(self._apply(conn, job, now, book))
        book.flush()
        return outcomes

    def _apply(
        self,
        conn: Connection,
        job: _Job,
        now: datetime,
        book: _Book,
    ) -> Outcome:
        content, request = job.content, job.request
        row: dict[str, Any] = {
            "received_at": now,
            "sender": content.from_address[:320],
            "envelope_from": job.envelope_from[:320],
            "client_ip": job.client_ip[:64],
            "message_id": content.message_id[:998],
            "subject": content.subject,
            "raw": job.raw,
            "results": [],
            "warnings": [],
            "email_id": None,
            "account_id": None,
            "keyid": None,
        }
        if request is None:
            return self._record(conn, book, row, NOT_PROCESSED, reason=content.reason)
        keyid = request.keyid.strip()
        row["keyid"] = keyid[:64] or None
        account = book.account(keyid) if keyid else None
        if account is not None:
            row["account_id"] = account.id
        refusal = rules.authorise(
            keyid,
            account,
            from_address=content.from_address,
            envelope_from=job.envelope_from,
            client_ip=job.client_ip,
        )
        if refusal is not None or account is None:
            code = refusal if refusal is not None else codes.BAD_CREDENTIALS
            return self._record(
                conn,
                book,
                row,
                REFUSED,
                code=code,
                reason=f"{code}: {codes.message(code)}; no reply",
            )
        email_id = request.email_id.strip()
        row["email_id"] = email_id[:64] or None
        warnings = list(request.notes)
        row["warnings"] = warnings
        if not rules.valid_email_id(email_id):
            ack = replies.ack(email_id[:64] or None, codes.ACK_MISSING_ID)
            queued = self._replies(request, warnings, ack=ack, report=None)
            reason = "emailId missing or not numeric: Ack 2, nothing sent"
            return self._record(conn, book, row, REFUSED, reason=reason, replies=queued)
        if not book.claim(account.id, email_id):
            ack = replies.ack(email_id, codes.ACK_DUPLICATE)
            queued = self._replies(request, warnings, ack=ack, report=None)
            reason = "emailId already processed: Ack 1, nothing sent"
            return self._record(conn, book, row, DUPLICATE, reason=reason, replies=queued)
        ack = replies.ack(email_id, codes.ACK_PROCESSED)
        if request.refusal is not None:
            code = request.refusal
            job.codes.append(code)
            report = replies.not_report(email_id, [("", code)], numbered=False)
            queued = self._replies(request, warnings, ack=ack, report=report)
            row["results"] = [{"tel": "", "code": code, "message": codes.message(code)}]
            return self._record(
                conn,
                book,
                row,
                PROCESSED,
                code=code,
                reason=f"request refused: {code}",
                replies=queued,
            )
        decision = rules.decide(
            request,
            account,
            now,
            self._rules,
            faults=book.active_faults(),
            rate_budget=self._limiter.budget(account),
        )
        self._limiter.spend(account, decision.debit)
        warnings = list(decision.warnings)
        row["warnings"] = warnings
        report = replies.not_report(
            email_id, [(r.tel, r.code) for r in decision.results], numbered=request.numbered
        )
        queued = self._replies(request, warnings, ack=ack, report=report)
        row["results"] = [
            {"tel": r.tel, "code": r.code, "message": codes.message(r.code)}
            for r in decision.results
        ]
        job.codes.extend(r.code for r in decision.results)
        outcome = self._record(conn, book, row, PROCESSED, replies=queued)
        book.decided(account, decision, email_id, outcome.email_row, now)
        return outcome

    def _replies(
        self, request: Request, warnings: list[str], *, ack: str, report: str | None
    ) -> list[tuple[str, str, str]]:
        """The (kind, address, body) replies to queue; a bad address is a warning, not a reply."""
        queued: list[tuple[str, str, str]] = []
        for kind, given, body in (
            ("ack", request.email_ack, ack),
            ("not", request.email_not, report),
        ):
            if body is None or not given.strip():
                continue
            address = replies.reply_address(given)
            if address is None:
                warnings.append(
                    f"email{kind.capitalize()} {given[:80]!r} is not one plain address: "
                    "no reply sent there"
                )
                continue
            queued.append((kind, address, body))
        return queued

    def _record(
        self,
        conn: Connection,
        book: _Book,
        row: dict[str, Any],
        status: str,
        *,
        reason: str = "",
        code: int | None = None,
        replies: Sequence[tuple[str, str, str]] = (),
    ) -> Outcome:
        row = {**row, "status": status, "reason": reason, "code": code}
        email_row = book.insert_email(row)
        book.replies.extend(
            {
                "email_row": email_row,
                "kind": kind,
                "to": address,
                "email_id": row["email_id"],
                "body": body,
                "state": self._reply_state,
                "attempts": 0,
                "created_at": row["received_at"],
            }
            for kind, address, body in replies
        )
        return Outcome(email_row=email_row, status=status)


# Statements built once: building them per email was a large part of its cost (bench/).
_INSERT_EMAIL = insert(emails).returning(emails.c.id)
_INSERT_REPLY = insert(replies_table)
_INSERT_SMS = insert(sms)
_SMS_COLUMNS = (
    "email_row",
    "account_id",
    "to",
    "sender",
    "text",
    "parts",
    "encoding",
    "tracker",
    "email_id",
    "created_at",
)
_SQLITE_INSERT_SMS = (
    f"INSERT INTO sms ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in _SMS_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _SMS_COLUMNS)})"
)


_EMAIL_COLUMNS = (
    "received_at",
    "status",
    "reason",
    "code",
    "email_id",
    "account_id",
    "keyid",
    "sender",
    "envelope_from",
    "client_ip",
    "message_id",
    "subject",
    "results",
    "warnings",
    "raw",
)
_SQLITE_INSERT_EMAIL = (
    f"INSERT INTO emails ({', '.join(_EMAIL_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _EMAIL_COLUMNS)})"
)
_REPLY_COLUMNS = ("email_row", "kind", "to", "email_id", "body", "state", "attempts", "created_at")
_SQLITE_INSERT_REPLY = (
    f"INSERT INTO replies ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in _REPLY_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _REPLY_COLUMNS)})"
)
_SQLITE_CLAIM = "INSERT INTO email_ids (account_id, email_id) VALUES (?, ?) ON CONFLICT DO NOTHING"


def _sqlite_stamp(instant: datetime) -> str:
    """An instant as SQLAlchemy's SQLite DATETIME stores it (UTC, as UtcDateTime binds it)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


_ACTIVE_FAULTS = (
    select(faults.c.id, faults.c.code, faults.c.remaining, faults.c.number, faults.c.keyid)
    .where(faults.c.remaining > 0)
    .order_by(faults.c.id)
)
_SPEND_FAULT = (
    update(faults)
    .where(faults.c.id == bindparam("fault"))
    .values(remaining=faults.c.remaining - bindparam("used"))
)
_CLAIM_EMAIL_ID = {
    "sqlite": sqlite.insert(email_ids).on_conflict_do_nothing(),
    "postgresql": postgresql.insert(email_ids).on_conflict_do_nothing(),
}


class _Book:
    """What one batch reads once and writes once: account snapshots (their rows locked on
    PostgreSQL, the whole database on SQLite, so they cannot change under the batch), the
    active faults (locked on PostgreSQL in id order, so replicas never both spend a last use),
    and the SMS, replies, debits and fault uses, written together at the end."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        # SQLite: the per-email statements go straight to the driver's connection, inside the
        # same transaction; SQLAlchemy's per-statement work was most of an email's cost.
        self._sqlite: sqlite3.Connection | None = (
            conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
        )
        query = _ACTIVE_FAULTS
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        self._faults = {
            f.id: Fault(id=f.id, code=f.code, remaining=f.remaining, number=f.number, keyid=f.keyid)
            for f in conn.execute(query)
        }
        self._accounts: dict[str, Account | None] = {}
        self._debits: dict[int, int] = {}
        self._spent: dict[int, int] = {}
        self.sms: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []

    def claim(self, account_id: int, email_id: str) -> bool:
        """Claims the emailId for the account; the primary key makes it exact across replicas."""
        if self._sqlite is not None:
            cursor = self._sqlite.execute(_SQLITE_CLAIM, (account_id, email_id))
            return bool(cursor.rowcount == 1)
        claim = _CLAIM_EMAIL_ID[self._conn.dialect.name]
        params = {"account_id": account_id, "email_id": email_id}
        return bool(self._conn.execute(claim, params).rowcount == 1)

    def insert_email(self, row: dict[str, Any]) -> int:
        if self._sqlite is not None:
            values = [row[c] for c in _EMAIL_COLUMNS]
            values[0] = _sqlite_stamp(row["received_at"])
            values[-3:-1] = [json.dumps(row["results"]), json.dumps(row["warnings"])]
            email_row = self._sqlite.execute(_SQLITE_INSERT_EMAIL, values).lastrowid
            assert email_row is not None
            return email_row
        inserted: int = self._conn.execute(_INSERT_EMAIL, row).scalar_one()
        return inserted

    def account(self, keyid: str) -> Account | None:
        if keyid not in self._accounts:
            self._accounts[keyid] = accounts.read_snapshot(self._conn, keyid, lock=True)
        return self._accounts[keyid]

    def active_faults(self) -> tuple[Fault, ...]:
        return tuple(f for f in self._faults.values() if f.remaining > 0)

    def decided(
        self, account: Account, decision: Decision, email_id: str, email_row: int, now: datetime
    ) -> None:
        self.sms.extend(
            {
                "email_row": email_row,
                "account_id": account.id,
                "to": r.sms.to,
                "sender": r.sms.sender,
                "text": r.sms.text,
                "parts": r.sms.parts,
                "encoding": r.sms.encoding,
                "tracker": decision.tracker,
                "email_id": email_id,
                "created_at": now,
            }
            for r in decision.results
            if r.sms is not None
        )
        if decision.debit:
            self._accounts[account.keyid] = dataclasses.replace(
                account, credit=account.credit - decision.debit
            )
            self._debits[account.id] = self._debits.get(account.id, 0) + decision.debit
        for fault_id, used in decision.faults_used.items():
            fault = self._faults[fault_id]
            self._faults[fault_id] = dataclasses.replace(fault, remaining=fault.remaining - used)
            self._spent[fault_id] = self._spent.get(fault_id, 0) + used

    def flush(self) -> None:
        if self.sms and self._sqlite is not None:
            # Hundreds of rows per request: plain tuples skip SQLAlchemy's per-row parameter
            # processing, the largest cost of a 500-recipient request (bench/).
            stamp = _sqlite_stamp(self.sms[0]["created_at"])
            self._sqlite.executemany(
                _SQLITE_INSERT_SMS, [(*(r[c] for c in _SMS_COLUMNS[:-1]), stamp) for r in self.sms]
            )
        elif self.sms:
            self._conn.execute(_INSERT_SMS, self.sms)
        if self.replies and self._sqlite is not None:
            self._sqlite.executemany(
                _SQLITE_INSERT_REPLY,
                [
                    (*(r[c] for c in _REPLY_COLUMNS[:-1]), _sqlite_stamp(r["created_at"]))
                    for r in self.replies
                ],
            )
        elif self.replies:
            self._conn.execute(_INSERT_REPLY, self.replies)
        for account_id, parts in self._debits.items():
            guarded = self._conn.execute(accounts.DEBIT, {"account": account_id, "parts": parts})
            if guarded.rowcount != 1:
                raise ProcessingError("credit changed under the batch; it will be retried")
        if self._spent:
            self._conn.execute(
                _SPEND_FAULT, [{"fault": k, "used": n} for k, n in self._spent.items()]
            )


def _lock_accounts(conn: Connection, batch: Sequence[_Job]) -> None:
    """PostgreSQL: lock the batch's accounts up front, in id order. Each email locks its
    account anyway; taken one by one, in the batch's order, two replicas whose batches
    hold the same accounts in another order would deadlock instead of queueing."""
    if conn.dialect.name != "postgresql":
        return
    keyids = {job.request.keyid.strip() for job in batch if job.request is not None}
    keyids.discard("")
    if keyids:
        conn.execute(
            select(accounts_table.c.id)
            .where(accounts_table.c.keyid.in_(sorted(keyids)))
            .order_by(accounts_table.c.id)
            .with_for_update()
        )
