"""The outbox worker: queued Ack/Not replies to the relay, in order per recipient, with retries.

Guarantees. A reply is due when it is `pending`, its `next_attempt_at` has passed (or is
NULL), and no older reply to the same address is still pending: replies to one address
arrive in the order they were created, replies to different addresses do not wait for each
other. A worker claims due rows in a transaction of their own (PostgreSQL: `FOR UPDATE
SKIP LOCKED`; SQLite: the write lock) by moving `next_attempt_at` one lease ahead and
counting the attempt, commits, and only then talks to the relay; so several replicas on one
database never send the same reply at the same time. The outcome is then recorded only if
the row is still under that claim: `delivered`, or a retry after `backoff * 2**(attempts-1)`
seconds (at most `max_backoff`), or `failed` after `max_attempts` or on a 5xx refusal.
Delivery is at least once: a worker killed after its claim and before recording the outcome
leaves the row pending, and it is sent again once the lease has expired. The message is then
byte for byte the same, Message-ID included, so a receiver can drop the rare double.
Backoff and leases run on real time, never on the gateway's (possibly frozen) clock. With
`relay.host` empty nothing is delivered (replies are then stored as `kept`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from gateway.config import RelaySettings
from gateway.core.model import ReplyState
from gateway.errors import DeliveryError, PermanentDeliveryError
from gateway.events import Changes
from gateway.mailer import build_reply, deliver
from gateway.metrics import Metrics
from gateway.store import outbox as store
from gateway.store.engine import Database
from gateway.store.outbox import Claim

log = logging.getLogger("mail2sms.outbox")


class Outbox:
    """Delivers due replies; `run` is the background loop, `deliver_due` one round of it."""

    def __init__(
        self,
        engine: Database,
        relay: RelaySettings,
        changes: Changes,
        metrics: Metrics,
        *,
        concurrency: int = 10,
        poll: float = 1.0,
        timeout: float = 30.0,
        lease: float | None = None,
    ) -> None:
        self._engine = engine
        self._relay = relay
        self._changes = changes
        self._metrics = metrics
        self._concurrency = concurrency  # replies (so recipients) sent at once in a round
        self._poll = poll  # how often to look for retries and other replicas' replies
        self._timeout = timeout  # one whole SMTP delivery
        # Outlives a delivery and the recording of its outcome, or another worker re-sends it.
        self._lease = timedelta(seconds=lease if lease is not None else 4 * timeout)

    async def run(self) -> None:
        """Deliver until cancelled; a failing round is logged and the loop goes on."""
        if not self._relay.host:
            log.info("relay.host is empty: replies are kept, not delivered")
            return
        while True:
            seen = self._changes.versions.get("replies", 0)
            try:
                await self.deliver_due(datetime.now(UTC))
            except Exception:
                log.exception("outbox: a delivery round failed; trying again")
            await self._wait_for_replies(seen)

    async def _wait_for_replies(self, seen: int) -> None:
        """Until the "replies" topic moves past `seen` (our own outcomes included), or the poll."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._poll
        while self._changes.versions.get("replies", 0) == seen:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await self._changes.wait(remaining)

    async def deliver_due(self, now: datetime) -> int:
        """One round: claim the replies due at `now` (one per address), send them, record how
        it went; returns how many were delivered."""
        if not self._relay.host:
            return 0
        claims = await store.claim_due(
            self._engine, now, limit=self._concurrency, lease=self._lease
        )
        if not claims:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(claim, now) for claim in claims))
        return sum(outcomes)

    async def _deliver(self, claim: Claim, now: datetime) -> int:
        """Send one claimed reply and record the outcome; 1 if delivered. Never raises: after
        an unexpected error (the database, say) the claim expires and the reply goes again."""
        try:
            return await self._send_and_record(claim, now)
        except Exception:
            log.exception("outbox: reply %d: unexpected error; retried after the lease", claim.id)
            return 0

    async def _send_and_record(self, claim: Claim, now: datetime) -> int:
        relay = self._relay
        try:
            message = build_reply(
                kind=claim.kind,
                to=claim.to,
                email_id=claim.email_id,
                body=claim.body,
                sender=relay.sender,
                reply_id=claim.id,
                date=claim.created_at,
            )
            await deliver(relay.host, relay.port, relay.sender, claim.to, message, self._timeout)
        except ValueError as exc:
            error = f"cannot build the reply: {exc}"
            return await self._failed(claim, error, permanent=True, now=now)
        except DeliveryError as exc:
            permanent = isinstance(exc, PermanentDeliveryError)
            return await self._failed(claim, str(exc), permanent=permanent, now=now)
        await self._record(claim, ReplyState.DELIVERED, delivered_at=now)
        return 1

    async def _failed(self, claim: Claim, error: str, *, permanent: bool, now: datetime) -> int:
        if permanent or claim.attempts >= self._relay.max_attempts:
            log.warning(
                "outbox: reply %d to %s failed for good (attempt %d): %s",
                claim.id,
                claim.to,
                claim.attempts,
                error,
            )
            await self._record(claim, ReplyState.FAILED, last_error=error)
            return 0
        delay = min(
            self._relay.backoff * 2.0 ** min(claim.attempts - 1, 64), self._relay.max_backoff
        )
        log.warning(
            "outbox: reply %d to %s: attempt %d failed, next in %g s: %s",
            claim.id,
            claim.to,
            claim.attempts,
            delay,
            error,
        )
        retry_at = now + timedelta(seconds=delay)
        await self._record(claim, ReplyState.PENDING, next_attempt_at=retry_at, last_error=error)
        return 0

    async def _record(
        self,
        claim: Claim,
        state: ReplyState,
        *,
        next_attempt_at: datetime | None = None,
        last_error: str = "",
        delivered_at: datetime | None = None,
    ) -> None:
        recorded = await store.record(
            self._engine,
            claim,
            state,
            next_attempt_at=next_attempt_at,
            last_error=last_error,
            delivered_at=delivered_at,
        )
        if not recorded:
            log.warning(
                "outbox: reply %d: claim lost (lease expired?), outcome %s not recorded",
                claim.id,
                state.value,
            )
            return
        if state is not ReplyState.PENDING:
            self._metrics.reply_state(state.value)
        self._changes.publish(["replies"])
