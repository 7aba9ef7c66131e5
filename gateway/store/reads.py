"""What the admin API and the CLI read: filtered, paginated lists (newest first), faults, probes."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import reduce
from operator import add
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    FromClause,
    RowMapping,
    Select,
    false,
    func,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core import codes
from gateway.core.model import Channel, EmailStatus, ReplyKind, ReplyState
from gateway.store import by_number
from gateway.store.tables import (
    GROUPS_WITH_SMS,
    SMS_CONTENT,
    SMS_WITH_GROUP,
    accounts,
    emails,
    faults,
    replies,
    sms,
    sms_counts,
    sms_groups,
    with_tracker,
)

# Rows of emails and of replies read at a time (they carry a request's results or an XML body).
HEAVY_ROWS = 8


class Page(NamedTuple):
    items: list[dict[str, Any]]
    total: int


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _account_id(keyid: str) -> ColumnElement[Any]:
    # A scalar subquery keeps the filter on the (account_id, id) indexes; unknown keyid → NULL.
    return select(accounts.c.id).where(accounts.c.keyid == keyid).scalar_subquery()


def _sent(
    conn: AsyncConnection,
    email_row: ColumnElement[Any],
    number: str | None,
    tracker: str | None,
) -> list[ColumnElement[bool]]:
    """`email_row` is an email that sent an SMS to `number` with `tracker` (either may be None:
    no condition). A number refused by its request got no SMS: it does not select that email."""
    wanted = [with_tracker(tracker)] if tracker is not None else []
    if number is None:
        sent = select(sms_groups.c.email_row).select_from(SMS_WITH_GROUP).where(*wanted)
        return [email_row.in_(sent)] if wanted else []
    arms = [
        select(sms_groups.c.email_row).select_from(source).where(*wanted, condition)
        for source, condition, _ in _numbered(conn, SMS_WITH_GROUP, number)
    ]
    return [email_row.in_(union_all(*arms) if len(arms) > 1 else arms[0])]


_Part = tuple[FromClause, ColumnElement[bool], tuple[ColumnElement[Any], ...]]


def _numbered(conn: AsyncConnection, source: FromClause, number: str) -> list[_Part]:
    """`source` (which holds `sms`) cut to the SMS to `number`, in parts, each with the key it
    reads them by in the SMS's order (its last column, the SMS id). PostgreSQL: by the index
    on the number. SQLite: the newest, not entered yet, by id (twice: as wide as the other's),
    then the others from their entries, run by run (by_number.py)."""
    if not by_number.has_tail(conn.dialect.name):
        return [(source, sms.c.to == number, (sms.c.id,))]
    tail = (source, by_number.in_tail(number), (sms.c.id, sms.c.id))
    entered = (by_number.with_entry(source), by_number.entered(number), by_number.ENTRY_ORDER)
    return [tail, entered]


async def _page(
    conn: AsyncConnection,
    arms: Sequence[_Arm],
    paging: tuple[int, int, int | None],
    count: Select[Any],
    partition: int = 200,
) -> tuple[list[Mapping[Any, Any]], int]:
    """One filter, two statements: the page (ORDER BY id DESC LIMIT, below `before_id` when
    given: a deep page by keyset costs what the first one does) and the total of all matches.
    `paging` is (limit, offset, before_id); the rows are read `partition` at a time. Rows
    from several arms are merged by the database, each arm read in its own order (as wide
    in each); the rows then also have those columns, as order_0, order_1…"""
    limit, offset, before_id = paging
    total = int((await conn.execute(count)).scalar_one())
    if limit == 0 or offset >= total:
        return [], total
    query: Any
    if len(arms) > 1:
        keys = [f"order_{n}" for n in range(len(arms[0].order))]
        merged = union_all(*(arm.select(before_id, keys) for arm in arms))
        query = merged.order_by(*(merged.selected_columns[key].desc() for key in keys))
    else:
        (arm,) = arms
        query = arm.select(before_id).order_by(*(column.desc() for column in arm.order))
    rows = await conn.stream(query.limit(limit).offset(offset))
    found: list[Mapping[Any, Any]] = []
    # Read a few rows at a time, the event loop let through in between: an email row holds
    # its request's results as JSON (500 recipients: ~0.2 ms to read back), a reply its XML.
    async for part in rows.mappings().partitions(partition):
        found.extend(part)
    return found, total


class _Arm(NamedTuple):
    """One source of a page's rows; `order` is its id (or the id in other words: columns,
    each descending and each below `before_id`)."""

    source: FromClause
    columns: Sequence[Any]
    conditions: Sequence[ColumnElement[bool]]
    order: Sequence[ColumnElement[Any]]

    def select(self, before_id: int | None, keys: Sequence[str] = ()) -> Select[Any]:
        """Its rows below `before_id`, with its order's columns as `keys` when named."""
        keyset = [column < before_id for column in self.order] if before_id is not None else []
        named = [column.label(key) for column, key in zip(self.order, keys, strict=False)]
        return (
            select(*self.columns, *named).select_from(self.source).where(*self.conditions, *keyset)
        )


def _count(table: FromClause, conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return select(func.count()).select_from(table).where(*conditions)


def _count_all(parts: Sequence[tuple[FromClause, Sequence[ColumnElement[bool]]]]) -> Select[Any]:
    """The total of the matches of several sources."""
    return select(reduce(add, (_count(*part).scalar_subquery() for part in parts)))


_SMS_COLUMNS = (
    sms.c.id,
    *SMS_CONTENT,
    accounts.c.keyid.label("account"),
    sms_groups.c.email_id,
    sms_groups.c.created_at,
    sms_groups.c.channel,
    sms.c.state,
    sms.c.due_at,
)


_SMS_NAMES = tuple(column.key for column in _SMS_COLUMNS)
_SMS_WITH_ACCOUNT = SMS_WITH_GROUP.join(accounts, sms_groups.c.account_id == accounts.c.id)


@functools.cache
def _sms_columns(id_column: ColumnElement[Any]) -> tuple[Any, ...]:
    """The listed columns with the SMS id taken from `id_column`."""
    return (id_column.label("id"), *_SMS_COLUMNS[1:])


async def list_sms(
    conn: AsyncConnection,
    *,
    to: str | None = None,
    account: str | None = None,
    tracker: str | None = None,
    email_id: str | None = None,
    channel: str | None = None,
    email_row: int | None = None,
    limit: int = 100,
    offset: int = 0,
    before_id: int | None = None,
) -> Page:
    grouped: list[ColumnElement[bool]] = []  # on the columns of the SMS's group
    counted: list[ColumnElement[bool]] = []  # the same filter on sms_counts
    if channel is not None:
        grouped.append(sms_groups.c.channel == channel)
        counted.append(sms_counts.c.channel == channel)
    if account is not None:
        grouped.append(sms_groups.c.account_id == _account_id(account))
        counted.append(sms_counts.c.account_id == _account_id(account))
    count = (
        select(func.coalesce(func.sum(sms_counts.c.total), 0)).where(*counted)
        if to is None and tracker is None and email_id is None and email_row is None
        else None
    )
    if email_row is not None:
        grouped.append(sms_groups.c.email_row == email_row)
    if email_id is not None:
        grouped.append(sms_groups.c.email_id == email_id)
    own: list[ColumnElement[bool]] = []  # on the SMS's own columns
    if tracker is not None:
        own.append(with_tracker(tracker))
    conditions = [*grouped, *own]
    paging = (limit, offset, before_id)
    if to is not None:
        arms = [
            _Arm(part, _sms_columns(key[-1]), [*conditions, cut], key)
            for part, cut, key in _numbered(conn, _SMS_WITH_ACCOUNT, to)
        ]
        parts = _numbered(conn, SMS_WITH_GROUP, to)
        total_of = _count_all([(part, [*conditions, cut]) for part, cut, _ in parts])
        rows, total = await _page(conn, arms, paging, total_of)
    else:
        order: tuple[ColumnElement[Any], ...]
        source, order = SMS_WITH_GROUP, (sms.c.id,)
        if grouped and not own:
            # From the matching groups, newest first, to each one's SMS (tables.sms_groups).
            source, order = GROUPS_WITH_SMS, (sms_groups.c.id, sms.c.id)
        with_account = source.join(accounts, sms_groups.c.account_id == accounts.c.id)
        rows, total = await _page(
            conn,
            [_Arm(with_account, _SMS_COLUMNS, conditions, order)],
            paging,
            _count(source, conditions) if count is None else count,
        )
    return Page(
        [
            # By name: a page from several parts also has the columns they were merged by.
            {
                **{name: row[name] for name in _SMS_NAMES},
                "created_at": _iso(row["created_at"]),
                "due_at": _iso(row["due_at"]),
            }
            for row in rows
        ],
        total,
    )


_EMAIL_COLUMNS = (
    emails.c.id,
    emails.c.status,
    emails.c.reason,
    emails.c.code,
    emails.c.email_id,
    emails.c.keyid.label("account"),
    emails.c.sender,
    emails.c.envelope_from,
    emails.c.client_ip,
    emails.c.subject,
    emails.c.message_id,
    emails.c.received_at,
    emails.c.results,
    emails.c.warnings,
)


async def list_emails(
    conn: AsyncConnection,
    *,
    status: EmailStatus | None = None,
    email_id: str | None = None,
    account: str | None = None,
    number: str | None = None,
    tracker: str | None = None,
    channel: Channel | None = None,
    limit: int = 100,
    offset: int = 0,
    before_id: int | None = None,
) -> Page:
    conditions = _sent(conn, emails.c.id, number, tracker)
    if channel is not None and channel != Channel.MAIL:
        conditions.append(false())  # an email is a request of the mail channel
    if status is not None:
        conditions.append(emails.c.status == status)
    if email_id is not None:
        conditions.append(emails.c.email_id == email_id)
    if account is not None:
        conditions.append(emails.c.account_id == _account_id(account))
    rows, total = await _page(
        conn,
        [_Arm(emails, _EMAIL_COLUMNS, conditions, (emails.c.id,))],
        (limit, offset, before_id),
        _count(emails, conditions),
        partition=HEAVY_ROWS,
    )
    return Page([_email_item(row) for row in rows], total)


def _email_item(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {**row, "received_at": _iso(row["received_at"]), "results": _results(row["results"])}


def _results(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each recipient's tel, code and message: the writer stores the first two, the message
    is its code's (rows written before kept theirs). Completed in place: the list was just
    read (a copy of 500 results would cost more than their JSON's reading)."""
    message = codes.message
    for result in stored:
        if "message" not in result:
            result["message"] = message(result["code"])
    return stored


async def email(conn: AsyncConnection, email_row: int) -> tuple[dict[str, Any], bytes] | None:
    """One inbound email as listed, and its raw message; None when there is no such row."""
    found = await conn.execute(
        select(*_EMAIL_COLUMNS, emails.c.raw).where(emails.c.id == email_row)
    )
    row = found.mappings().first()
    if row is None:
        return None
    item = _email_item(row)
    raw = item.pop("raw")
    return item, bytes(raw)


async def email_raw(conn: AsyncConnection, email_row: int) -> bytes | None:
    raw = (await conn.execute(select(emails.c.raw).where(emails.c.id == email_row))).scalar()
    return bytes(raw) if raw is not None else None


_REPLY_COLUMNS = (
    replies.c.id,
    replies.c.kind,
    replies.c.to,
    replies.c.email_id,
    replies.c.body,
    replies.c.state,
    replies.c.attempts,
    replies.c.last_error,
    replies.c.created_at,
    replies.c.next_attempt_at,
    replies.c.delivered_at,
)


async def list_replies(
    conn: AsyncConnection,
    *,
    kind: ReplyKind | None = None,
    email_id: str | None = None,
    to: str | None = None,
    account: str | None = None,
    number: str | None = None,
    tracker: str | None = None,
    channel: Channel | None = None,
    email_row: int | None = None,
    limit: int = 100,
    offset: int = 0,
    before_id: int | None = None,
) -> Page:
    conditions = _sent(conn, replies.c.email_row, number, tracker)
    if channel is not None and channel != Channel.MAIL:
        conditions.append(false())  # only emails get Ack and Not replies
    if account is not None:
        of_account = select(emails.c.id).where(emails.c.account_id == _account_id(account))
        conditions.append(replies.c.email_row.in_(of_account))
    if email_row is not None:
        conditions.append(replies.c.email_row == email_row)
    if kind is not None:
        conditions.append(replies.c.kind == kind)
    if email_id is not None:
        conditions.append(replies.c.email_id == email_id)
    if to is not None:
        conditions.append(replies.c.to == to)
    rows, total = await _page(
        conn,
        [_Arm(replies, _REPLY_COLUMNS, conditions, (replies.c.id,))],
        (limit, offset, before_id),
        _count(replies, conditions),
        partition=HEAVY_ROWS,
    )
    times = ("created_at", "next_attempt_at", "delivered_at")
    return Page([{**row, **{t: _iso(row[t]) for t in times}} for row in rows], total)


# Passwords are never read for a list (SPEC §16).
_ACCOUNT_COLUMNS = [c for c in accounts.c if c.name not in ("id", "password")]


async def list_accounts(
    conn: AsyncConnection,
    *,
    limit: int = 100,
    offset: int = 0,
    before_id: int | None = None,
) -> Page:
    rows, total = await _page(
        conn,
        [_Arm(accounts, _ACCOUNT_COLUMNS, [], (accounts.c.id,))],
        (limit, offset, before_id),
        _count(accounts, []),
    )
    return Page([{**row, "created_at": _iso(row["created_at"])} for row in rows], total)


async def fingerprint(conn: AsyncConnection) -> dict[str, tuple[Any, ...]]:
    """Cheap per-topic markers (index lookups only) that move when another replica writes."""
    row = (
        await conn.execute(
            select(
                select(func.max(sms.c.id)).scalar_subquery(),
                select(func.max(emails.c.id)).scalar_subquery(),
                select(func.max(replies.c.id)).scalar_subquery(),
                select(func.count())
                .select_from(replies)
                .where(replies.c.state == ReplyState.PENDING)
                .scalar_subquery(),
            )
        )
    ).one()
    return {"sms": (row[0],), "emails": (row[1],), "replies": (row[2], row[3])}


def fault_item(row: RowMapping) -> dict[str, Any]:
    return {**row, "created_at": _iso(row["created_at"])}


async def list_faults(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The faults that will still hit a recipient, newest first."""
    rows = await conn.execute(
        select(*faults.c).where(faults.c.remaining > 0).order_by(faults.c.id.desc())
    )
    return [fault_item(row._mapping) for row in rows]


async def account_exists(conn: AsyncConnection, keyid: str) -> bool:
    found = await conn.execute(select(accounts.c.id).where(accounts.c.keyid == keyid))
    return found.first() is not None


async def ping(conn: AsyncConnection) -> None:
    """One round trip: raises when the database does not answer."""
    await conn.execute(text("SELECT 1"))
