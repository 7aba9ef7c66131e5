"""The sequencing of the pipeline: an email in, read by the core, queued, applied by the writer
in one durable transaction with the others waiting, and answered.

Emails that arrive together are handed to the writer as one batch (one transaction, one
commit) and answered only after that commit: each `250` still means "this email and all it
caused are on disk", at a fraction of the commits. If a batch fails, each of its emails is
applied alone, so that one bad email costs its own 451 while the others still apply.

A batch is answered the moment its commit is known: the writer's answer, the emails' answers
and the next batch happen in one call on the event loop when the writer can (`Writer.start`),
not a task's turn after another (each waits behind every client served: ~0.5–1 ms, bench/).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.clock import Clock
from gateway.config import Settings
from gateway.core import intake, outcome
from gateway.core.intake import Parts
from gateway.core.model import Account, HttpCall, Inbound, Intake, ReadLimits
from gateway.errors import ProcessingError
from gateway.events import Changes
from gateway.metrics import Metrics
from gateway.store.writer import Writer, Written

log = logging.getLogger("mail2sms.service")

MAX_BATCH = 64
# Emails larger than this are read in a thread (a plain request is a few KiB: read inline).
# A request of a few hundred numbers is one (~1 ms to read): when a dozen such arrive at once,
# read inline they held the loop for all of them before the first could be handed over
# to the writer, which waited idle (500 numbers: 130 → ~150 emails/s, bench/).
OFF_LOOP_BYTES = 8 * 1024
# A sender found authorised is taken as authorised for this long (seconds): its next emails'
# attachments are decoded at once, in the same thread as their body, without the account
# lookup and the second hop (500-line CSVs: the event loop's CPU 2.1–2.4 → 1.4–1.6 ms an
# email, bench/). Only the order of the work changes: the writer still decides each email on
# the account it reads in its transaction, so a sender refused in between is refused all the
# same; what the window costs is the decoding of such an email's attachments.
AUTHORISED_FOR = 5.0
AUTHORISED_KEPT = 1024  # senders remembered at most (all forgotten when full)
# A bigger email is made ready for the writer (pickled) with its batch, not by its reading
# thread: one waiting for its batch is then not held twice. The largest campaign the rules
# can use (500 CSV lines with all 27 fields) is ~0.6 MB as mail.
PREPARED_MAX_BYTES = 1024 * 1024


class AuthorisedSenders:
    """The senders (outcome.sender) found authorised in the last AUTHORISED_FOR seconds.
    Asked from the threads that read emails, filled on the event loop: each operation is one
    dict operation (atomic under the GIL)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._until: dict[tuple[str, str, str, str], float] = {}

    def __contains__(self, inbound: Inbound) -> bool:
        until = self._until.get(outcome.sender(inbound))
        return until is not None and self._now() < until

    def add(self, inbound: Inbound) -> None:
        if len(self._until) >= AUTHORISED_KEPT:
            self._until.clear()
        self._until[outcome.sender(inbound)] = self._now() + AUTHORISED_FOR


# An email read: the email, its attachments not decoded yet, what the writer takes of it.
_Read = tuple[Inbound, Parts, Any]


@dataclass(slots=True)
class _Job:
    inbound: Intake
    item: Any  # what the writer takes: the inbound, or what its `prepare` made of it
    started: float
    future: asyncio.Future[Written]
    answer: Callable[[Written], None] | None  # told the result at once, before the future


class Service:
    def __init__(
        self,
        writer: Writer[Any],
        lookup: Callable[[str], Awaitable[Account | None]],
        clock: Clock,
        settings: Settings,
        changes: Changes,
        metrics: Metrics,
    ) -> None:
        self._writer = writer
        self._lookup = lookup
        self._clock = clock
        limits = settings.limits
        self._limits = ReadLimits(
            max_body_chars=limits.max_body_chars,
            max_tags=limits.max_tags,
            max_value_chars=limits.max_value_chars,
            max_recipients=limits.max_recipients,
        )
        self._changes = changes
        self._metrics = metrics
        self._waiting: collections.deque[_Job] = collections.deque()
        self._batches = 0  # handed to the writer and not finished
        self._finished = asyncio.Event()  # set when no email waits and no batch is out
        self._finished.set()
        self._closed = False
        self._handing_over = False  # a `_hand_over` is scheduled
        self._tasks: set[asyncio.Task[None]] = set()  # batches applied by a task
        self._authorised = AuthorisedSenders()

    async def drain(self, timeout: float) -> None:
        """Wait until every email handed to the writer has been committed (or failed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), timeout)

    def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        self._writer.close()

    async def submit(
        self,
        raw: bytes,
        *,
        envelope_from: str,
        client_ip: str,
        answer: Callable[[Written], None] | None = None,
    ) -> Written:
        """Apply one email durably; raises ProcessingError when nothing of it was kept.
        `answer`, if given, is told the result as soon as it is committed, before this returns.

        Its attachments are decoded and its CSV read only once its sender is authorised, by
        a lookup now or in the last AUTHORISED_FOR seconds (SPEC §16): an anonymous party's
        campaign costs no more than its body."""
        started = time.perf_counter()
        read = functools.partial(self._read, raw, envelope_from, client_ip)
        inbound, parts, item = await self._off_loop(raw, read)
        if parts and inbound.request is not None:
            account = await self._lookup(outcome.account_key(inbound))
            if outcome.authorised(inbound, account):
                self._authorised.add(inbound)
                finish = functools.partial(self._whole, inbound, parts)
                inbound, parts, item = await self._off_loop(raw, finish)
        return await self.apply(inbound, started=started, item=item, answer=answer)

    def _read(self, raw: bytes, envelope_from: str, client_ip: str) -> tuple[Inbound, Parts]:
        """The email read; whole when its sender is known to be authorised (no parts left),
        else without its attachments and their parts."""
        inbound, parts = intake.read_named(
            raw, envelope_from=envelope_from, client_ip=client_ip, limits=self._limits
        )
        if parts and inbound.request is not None and inbound in self._authorised:
            return self._whole(inbound, parts)
        return inbound, parts

    def _whole(self, inbound: Inbound, parts: Parts) -> tuple[Inbound, Parts]:
        return intake.with_attachments(inbound, parts, self._limits), ()

    async def _off_loop(self, raw: bytes, read: Callable[[], tuple[Inbound, Parts]]) -> _Read:
        """The core's reading of an email; a big one off the event loop, so that parsing it
        never holds up the other clients, and made ready for the writer in the same thread
        once whole (`_ready`)."""
        if len(raw) <= OFF_LOOP_BYTES:
            inbound, parts = read()
            return inbound, parts, inbound
        return await asyncio.to_thread(self._ready, read)

    def _ready(self, read: Callable[[], tuple[Inbound, Parts]]) -> _Read:
        """The email read, and what the writer takes of it: made here, by the reading thread,
        once the email is whole (the process writer pickles it: off the event loop, before its
        batch is due), unless it is over PREPARED_MAX_BYTES."""
        inbound, parts = read()
        if parts or len(inbound.raw) > PREPARED_MAX_BYTES:
            return inbound, parts, inbound
        return inbound, parts, self._writer.prepare(inbound)

    async def apply(
        self,
        inbound: Intake,
        *,
        started: float | None = None,
        item: Any = None,
        answer: Callable[[Written], None] | None = None,
    ) -> Written:
        """Queue what a channel read for the writer; returns once it is committed. `item`:
        what the writer's `prepare` made of it, if it was called; `answer`: see `submit`."""
        future: asyncio.Future[Written] = asyncio.get_running_loop().create_future()
        began = time.perf_counter() if started is None else started
        item = inbound if item is None else item
        self._waiting.append(_Job(inbound, item, began, future, answer))
        self._finished.clear()
        if not self._handing_over:
            # At the end of this turn of the loop: the emails that arrive with it go together.
            self._handing_over = True
            asyncio.get_running_loop().call_soon(self._hand_over)
        return await future

    def _hand_over(self) -> None:
        """The emails waiting, as one batch, while the writer has room for one (its `depth`):
        called at the end of the loop's turn in which emails arrived (all of that turn's go
        together), and by each batch's end (all that waited go together)."""
        self._handing_over = False
        while self._waiting and self._batches < self._writer.depth and not self._closed:
            count = min(len(self._waiting), MAX_BATCH)
            batch = [self._waiting.popleft() for _ in range(count)]
            self._batches += 1
            now = self._clock.now()
            items = [job.item for job in batch]
            answered = functools.partial(self._answered, batch, now)
            if not self._writer.start(items, now, answered):
                self._in_task(self._apply_batch(batch, now))

    def _in_task(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply_batch(self, batch: Sequence[_Job], now: datetime) -> None:
        """A batch given to the writer's `apply` (when `start` cannot take it)."""
        try:
            written = await self._writer.apply([job.item for job in batch], now)
        except Exception as exc:
            await self._one_by_one(batch, now, exc)
        else:
            self._finish(batch, list(written))

    def _answered(self, batch: Sequence[_Job], now: datetime, outcome: Any) -> None:
        """The writer's answer to a batch it `start`ed: its results, or why it failed."""
        if isinstance(outcome, Exception):
            self._in_task(self._one_by_one(batch, now, outcome))
        else:
            self._finish(batch, outcome)

    async def _one_by_one(self, batch: Sequence[_Job], now: datetime, exc: Exception) -> None:
        """The batch failed: each of its emails applied alone (one alone has its error)."""
        results: list[Written | Exception]
        if len(batch) == 1 or self._closed:  # closed: no writer to apply them again
            for job in batch:
                log.error("%s could not be applied", _origin(job.inbound), exc_info=exc)
            results = [exc] * len(batch)
        else:
            results = [await self._apply_alone(job, now) for job in batch]
        self._finish(batch, results)

    def _finish(self, batch: Sequence[_Job], results: Sequence[Written | Exception]) -> None:
        """Answer each email of a finished batch, then hand the writer the emails waiting."""
        try:
            self._changes.publish(("emails", "sms", "replies"))
            self._answer(batch, results)
        finally:
            self._batches -= 1
            self._hand_over()
            if not self._batches:
                self._finished.set()

    def _answer(self, batch: Sequence[_Job], results: Sequence[Written | Exception]) -> None:
        finished = time.perf_counter()
        for job, result in zip(batch, results, strict=True):
            if job.future.done():
                continue
            if isinstance(result, Written):
                elapsed = finished - job.started
                if isinstance(job.inbound, HttpCall):
                    self._metrics.http_call_done(result.status, result.codes, elapsed)
                else:
                    self._metrics.email_done(result.status, result.codes, elapsed)
                job.future.set_result(result)
                if job.answer is not None:
                    try:
                        job.answer(result)
                    except Exception:  # the email is applied all the same: its future says so
                        log.exception("%s could not be answered at once", _origin(job.inbound))
            else:
                job.future.set_exception(ProcessingError("the email could not be applied"))

    async def _apply_alone(self, job: _Job, now: datetime) -> Written | Exception:
        try:
            (written,) = await self._writer.apply([job.item], now)
        except Exception as exc:
            log.exception("%s could not be applied", _origin(job.inbound))
            return exc
        return written


def _origin(item: Intake) -> str:
    if isinstance(item, HttpCall):
        return f"HTTP API call from {item.client_ip}"
    return f"email from {item.envelope_from}"
