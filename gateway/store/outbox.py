"""The outbox's statements: claim the replies that are due (one per address, under a lease),
and record how a delivery went, only while the claim still holds (gateway/outbox.py says why)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.model import ReplyState
from gateway.store.engine import write_transaction
from gateway.store.tables import replies

_PENDING = ReplyState.PENDING.value
# The oldest pending reply of each address: replies to one address go in order.
_HEADS = (
    select(func.min(replies.c.id))
    .where(replies.c.state == _PENDING)
    .group_by(replies.c.to)
    .scalar_subquery()
)


@dataclass(frozen=True)
class Claim:
    """A reply this worker holds the lease on; `attempts` (counting this one) is the token."""

    id: int
    kind: str  # ack|not as stored; anything else fails the reply, not the round
    to: str
    email_id: str | None
    body: str
    attempts: int
    created_at: datetime


async def claim_due(
    engine: AsyncEngine, now: datetime, *, limit: int, lease: timedelta
) -> list[Claim]:
    """Claim up to `limit` replies due at `now`, the oldest pending one of each address:
    their lease moves `lease` ahead and their attempt is counted, in a transaction of its own
    (PostgreSQL: FOR UPDATE SKIP LOCKED, so replicas claim different rows)."""
    due = (
        select(
            replies.c.id,
            replies.c.kind,
            replies.c.to,
            replies.c.email_id,
            replies.c.body,
            replies.c.attempts,
            replies.c.created_at,
        )
        .where(
            replies.c.id.in_(_HEADS),
            # Checked again on the row itself: PostgreSQL re-reads a row that another
            # replica changed while this statement waited on it.
            replies.c.state == _PENDING,
            or_(replies.c.next_attempt_at.is_(None), replies.c.next_attempt_at <= now),
        )
        .order_by(replies.c.id)
        .limit(limit)
    )
    # Looking first without the write lock keeps idle rounds off the SQLite writer.
    async with engine.connect() as conn:
        if (await conn.execute(due.with_only_columns(replies.c.id))).first() is None:
            return []
    async with write_transaction(engine) as conn:
        rows = (await conn.execute(due.with_for_update(skip_locked=True, of=replies))).all()
        if not rows:
            return []
        await conn.execute(
            update(replies)
            .where(replies.c.id.in_([row.id for row in rows]))
            .values(attempts=replies.c.attempts + 1, next_attempt_at=now + lease)
        )
    return [
        Claim(
            id=row.id,
            kind=row.kind,
            to=row.to,
            email_id=row.email_id,
            body=row.body,
            attempts=row.attempts + 1,
            created_at=row.created_at,
        )
        for row in rows
    ]


async def record(
    engine: AsyncEngine,
    claim: Claim,
    state: ReplyState,
    *,
    next_attempt_at: datetime | None = None,
    last_error: str = "",
    delivered_at: datetime | None = None,
) -> bool:
    """Record a delivery's outcome if the claim still holds (the reply is pending with the
    claim's attempt count); False when it was lost (the lease expired, another worker took it)."""
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(replies)
            .where(
                replies.c.id == claim.id,
                replies.c.state == _PENDING,
                replies.c.attempts == claim.attempts,
            )
            .values(
                state=state.value,
                next_attempt_at=next_attempt_at,
                last_error=last_error,
                delivered_at=delivered_at,
            )
        )
    return bool(result.rowcount == 1)
