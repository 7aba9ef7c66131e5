"""Retention (SPEC §16): the oldest records pruned by age and by count, so that the disk
stays bounded whatever arrives."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, bindparam, delete, exists, false, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.core.model import ReplyState
from gateway.store import admin, by_number
from gateway.store.engine import write_transaction
from gateway.store.tables import emails, replies, sms, sms_groups, sms_to

CHUNK = 2000  # emails deleted per transaction: the writer never waits long behind a prune


async def prune(
    engine: AsyncEngine, *, older_than: datetime | None, keep_emails: int
) -> dict[str, int]:
    """Delete emails received before `older_than` and all but the newest `keep_emails` (0: no
    count limit), with their SMS and replies — except an email whose reply is still pending
    delivery — and SMS of the HTTP API created before `older_than`. Counts per table."""
    deleted = {"emails": 0, "sms": 0, "replies": 0}
    while True:
        async with write_transaction(engine) as conn:
            doomed = _doomed(older_than, await _first_kept(conn, keep_emails))
            ids = list(
                (
                    await conn.execute(
                        select(emails.c.id).where(doomed).order_by(emails.c.id).limit(CHUNK)
                    )
                ).scalars()
            )
            if not ids:
                break
            deleted["sms"] += await _delete_groups(conn, sms_groups.c.email_row.in_(ids))
            for name, table, column in (
                ("replies", replies, replies.c.email_row),
                ("emails", emails, emails.c.id),
            ):
                deleted[name] += (await conn.execute(delete(table).where(column.in_(ids)))).rowcount
            await admin.recount_sms(conn)  # the API's totals read the counts
    if older_than is not None:
        async with write_transaction(engine) as conn:
            deleted["sms"] += await _delete_groups(
                conn, sms_groups.c.email_row.is_(None), sms_groups.c.created_at < older_than
            )
            await admin.recount_sms(conn)
    return deleted


async def _delete_groups(conn: AsyncConnection, *where: ColumnElement[bool]) -> int:
    """Delete these groups of SMS with their SMS (each group's range of ids); how many SMS
    (an SMS is only ever deleted with its whole group: here and by a reset)."""
    doomed = (await conn.execute(select(sms_groups.c.id, sms_groups.c.last_id).where(*where))).all()
    if not doomed:
        return 0
    ranges = [{"first": first, "last": last} for first, last in doomed]
    in_range = sms.c.id.between(bindparam("first"), bindparam("last"))
    if by_number.has_tail(conn.dialect.name):
        entries = select(*by_number.entry_of_sms()).where(in_range)  # by key, not a scan
        key = tuple_(sms_to.c.run, sms_to.c.to, sms_to.c.id)
        await conn.execute(delete(sms_to).where(key.in_(entries)), ranges)
        await conn.execute(by_number.forget_empty_runs())
    await conn.execute(delete(sms).where(in_range), ranges)
    await conn.execute(delete(sms_groups).where(sms_groups.c.id == bindparam("first")), ranges)
    return sum(last - first + 1 for first, last in doomed)


async def _first_kept(conn: AsyncConnection, keep_emails: int) -> int | None:
    """The id of the oldest email the count limit keeps (None: no limit, or fewer emails)."""
    if keep_emails <= 0:
        return None
    query = select(emails.c.id).order_by(emails.c.id.desc()).offset(keep_emails - 1).limit(1)
    value = (await conn.execute(query)).scalar()
    return int(value) if value is not None else None


def _doomed(older_than: datetime | None, first_kept: int | None) -> ColumnElement[bool]:
    reasons: list[ColumnElement[bool]] = []
    if older_than is not None:
        reasons.append(emails.c.received_at < older_than)
    if first_kept is not None:
        reasons.append(emails.c.id < first_kept)
    pending = exists().where(
        replies.c.email_row == emails.c.id, replies.c.state == ReplyState.PENDING.value
    )
    return and_(or_(*reasons) if reasons else false(), ~pending)
