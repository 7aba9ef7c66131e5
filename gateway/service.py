"""The only module that sequences core and store: an email in, one durable transaction, an outcome.

Emails that arrive together are applied by one writer task in one transaction (each in its own
SAVEPOINT, so one failing email rolls back alone) and answered only after that commit: each
`250` still means "this email and all it caused are on disk", at a fraction of the commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.clock import Clock
from gateway.config import Settings
from gateway.core import codes, envoi, mime, replies, rules
from gateway.core import request as requests
from gateway.core.model import Account, Decision, Fault, MailContent, Request, RuleSettings
from gateway.errors import ProcessingError
from gateway.events import Changes
from gateway.metrics import Metrics
from gateway.store import accounts
from gateway.store.engine import write_transaction
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
        self._engine = engine
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
        now = self._clock.now()
        results: dict[int, Outcome | BaseException] = {}
        try:
            async with write_transaction(self._engine) as conn:
                await self._lock_accounts(conn, batch)
                for job in batch:
                    try:
                        async with conn.begin_nested():
                            results[id(job)] = await self._apply(conn, job, now)
                    except Exception as exc:
                        log.exception("email from %s could not be applied", job.envelope_from)
                        results[id(job)] = exc
        except Exception as exc:
            log.exception("commit of %d email(s) failed", len(batch))
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(ProcessingError("the database commit failed"))
            del exc
            return
        self._changes.publish(("emails", "sms", "replies"))
        finished = time.perf_counter()
        for job in batch:
            outcome = results[id(job)]
            if job.future.done():
                continue
            if isinstance(outcome, Outcome):
                self._metrics.email_done(outcome.status, job.codes, finished - job.started)
                job.future.set_result(outcome)
            else:
                job.future.set_exception(ProcessingError("the email could not be applied"))

    @staticmethod
    async def _lock_accounts(conn: AsyncConnection, batch: Sequence[_Job]) -> None:
        """PostgreSQL: lock the batch's accounts up front, in id order. Each email locks its
        account anyway; taken one by one, in the batch's order, two replicas whose batches
        hold the same accounts in another order would deadlock instead of queueing."""
        if conn.dialect.name != "postgresql":
            return
        keyids = {job.request.keyid.strip() for job in batch if job.request is not None}
        keyids.discard("")
        if keyids:
            await conn.execute(
                select(accounts_table.c.id)
                .where(accounts_table.c.keyid.in_(sorted(keyids)))
                .order_by(accounts_table.c.id)
                .with_for_update()
            )

    async def _apply(self, conn: AsyncConnection, job: _Job, now: datetime) -> Outcome:
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
        }
        if request is None:
            return await self._record(conn, row, NOT_PROCESSED, reason=content.reason)
        keyid = request.keyid.strip()
        row["keyid"] = keyid[:64] or None
        account = await accounts.snapshot(conn, keyid, lock=True) if keyid else None
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
            return await self._record(
                conn, row, REFUSED, code=code, reason=f"{code}: {codes.message(code)}; no reply"
            )
        email_id = request.email_id.strip()
        row["email_id"] = email_id[:64] or None
        warnings = list(request.notes)
        if not rules.valid_email_id(email_id):
            ack = replies.ack(email_id[:64] or None, codes.ACK_MISSING_ID)
            queued = self._replies(request, warnings, ack=ack, report=None)
            row["warnings"] = warnings
            reason = "emailId missing or not numeric: Ack 2, nothing sent"
            return await self._record(conn, row, REFUSED, reason=reason, replies=queued)
        if not await self._first_time(conn, account.id, email_id):
            ack = replies.ack(email_id, codes.ACK_DUPLICATE)
            queued = self._replies(request, warnings, ack=ack, report=None)
            row["warnings"] = warnings
            reason = "emailId already processed: Ack 1, nothing sent"
            return await self._record(conn, row, DUPLICATE, reason=reason, replies=queued)
        ack = replies.ack(email_id, codes.ACK_PROCESSED)
        if request.refusal is not None:
            code = request.refusal
            job.codes.append(code)
            report = replies.not_report(email_id, [("", code)], numbered=False)
            queued = self._replies(request, warnings, ack=ack, report=report)
            row["warnings"] = warnings
            row["results"] = [{"tel": "", "code": code, "message": codes.message(code)}]
            return await self._record(
                conn, row, PROCESSED, code=code, reason=f"request refused: {code}", replies=queued
            )
        decision = await self._decide(conn, request, account, now)
        warnings = list(decision.warnings)
        report = replies.not_report(
            email_id, [(r.tel, r.code) for r in decision.results], numbered=request.numbered
        )
        queued = self._replies(request, warnings, ack=ack, report=report)
        row["warnings"] = warnings
        row["results"] = [
            {"tel": r.tel, "code": r.code, "message": codes.message(r.code)}
            for r in decision.results
        ]
        job.codes.extend(r.code for r in decision.results)
        outcome = await self._record(conn, row, PROCESSED, replies=queued)
        await self._commit_decision(conn, account, decision, email_id, outcome.email_row, now)
        return outcome

    async def _first_time(self, conn: AsyncConnection, account_id: int, email_id: str) -> bool:
        """Claims the emailId for the account; the primary key makes it exact across replicas."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(email_ids)
            .values(account_id=account_id, email_id=email_id)
            .on_conflict_do_nothing()
        )
        result = await conn.execute(statement)
        return bool(result.rowcount == 1)

    async def _decide(
        self, conn: AsyncConnection, request: Request, account: Account, now: datetime
    ) -> Decision:
        query = (
            select(faults.c.id, faults.c.code, faults.c.remaining, faults.c.number, faults.c.keyid)
            .where(faults.c.remaining > 0)
            .order_by(faults.c.id)
        )
        if conn.dialect.name == "postgresql":
            # Replicas must not both spend a fault's last use; id order keeps locks deadlock-free.
            query = query.with_for_update()
        active = await conn.execute(query)
        pending = tuple(
            Fault(id=f.id, code=f.code, remaining=f.remaining, number=f.number, keyid=f.keyid)
            for f in active
        )
        decision = rules.decide(
            request,
            account,
            now,
            self._rules,
            faults=pending,
            rate_budget=self._limiter.budget(account),
        )
        self._limiter.spend(account, decision.debit)
        return decision

    async def _commit_decision(
        self,
        conn: AsyncConnection,
        account: Account,
        decision: Decision,
        email_id: str,
        email_row: int,
        now: datetime,
    ) -> None:
        sent = [
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
        ]
        if sent:
            await conn.execute(insert(sms), sent)
        if decision.debit:
            guarded = await conn.execute(accounts.debit_statement(account.id, decision.debit))
            if guarded.rowcount != 1:
                raise ProcessingError("credit changed under the email; it will be retried")
        for fault_id, used in decision.faults_used.items():
            await conn.execute(
                update(faults)
                .where(faults.c.id == fault_id)
                .values(remaining=faults.c.remaining - used)
            )

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

    async def _record(
        self,
        conn: AsyncConnection,
        row: dict[str, Any],
        status: str,
        *,
        reason: str = "",
        code: int | None = None,
        replies: Sequence[tuple[str, str, str]] = (),
    ) -> Outcome:
        row = {**row, "status": status, "reason": reason, "code": code}
        email_row = (
            await conn.execute(insert(emails).values(row).returning(emails.c.id))
        ).scalar_one()
        if replies:
            await conn.execute(
                insert(replies_table),
                [
                    {
                        "email_row": email_row,
                        "kind": kind,
                        "to": address,
                        "email_id": row.get("email_id"),
                        "body": body,
                        "state": self._reply_state,
                        "attempts": 0,
                        "created_at": row["received_at"],
                    }
                    for kind, address, body in replies
                ],
            )
        return Outcome(email_row=email_row, status=status)
