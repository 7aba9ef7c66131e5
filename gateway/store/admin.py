"""The admin writes the HTTP API and the CLI share: accounts, injected faults, reset.

Each runs in its own write transaction; a refusal is a FieldError naming the field at fault."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import ConflictError, InvalidFieldError, NotFoundError, invalid_field
from gateway.store import accounts, reads
from gateway.store.engine import give_space_back, write_transaction
from gateway.store.tables import (
    SMS_WITH_GROUP,
    email_ids,
    emails,
    faults,
    replies,
    sms,
    sms_counts,
    sms_groups,
    sms_to,
    sms_to_runs,
)

# What a patch sets: the fields, or a function of the account as it is (its row locked).
Changes = Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]]


def _known(fields: Mapping[str, Any]) -> None:
    for name in fields:
        if name not in accounts.FIELDS:
            known = ", ".join(accounts.FIELDS)
            raise InvalidFieldError(name, f"unknown field; known: {known}")


async def create_account(
    engine: AsyncEngine, fields: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Create an account from [[accounts]] fields (keyid, login and password generated when
    absent); a taken keyid or login is a ConflictError naming it."""
    _known(fields)
    try:
        async with write_transaction(engine) as conn:
            return await accounts.create(conn, fields, now)
    except ValidationError as exc:
        raise invalid_field(exc, accounts.FIELDS) from None
    except IntegrityError:
        keyid = fields.get("keyid")
        if isinstance(keyid, str):
            async with engine.connect() as conn:
                if await reads.account_exists(conn, keyid):
                    raise ConflictError("keyid", f"an account {keyid!r} already exists") from None
        raise _login_taken(fields) from None


async def patch_account(engine: AsyncEngine, keyid: str, changes: Changes) -> dict[str, Any]:
    """Set some fields of an account. `changes` may be computed from the account as it is:
    its row stays locked until the commit (PostgreSQL), so a concurrent debit is not lost."""
    fields: Mapping[str, Any] = {}
    try:
        async with write_transaction(engine) as conn:
            locked = await accounts.snapshot(conn, keyid, lock=True)
            current = await accounts.get(conn, keyid)
            if locked is None or current is None:
                raise NotFoundError("keyid", f"no account with keyid {keyid!r}")
            fields = changes(current) if callable(changes) else changes
            _known(fields)
            if fields.get("keyid", keyid) != keyid:
                raise InvalidFieldError("keyid", "cannot be changed")
            account = await accounts.patch(conn, keyid, fields)
    except ValidationError as exc:
        raise invalid_field(exc, accounts.FIELDS) from None
    except IntegrityError:
        raise _login_taken(fields) from None
    assert account is not None
    return account


def _login_taken(fields: Mapping[str, Any]) -> ConflictError:
    return ConflictError("login", f"{fields.get('login')!r} is taken by another account")


async def add_fault(
    engine: AsyncEngine,
    *,
    code: int,
    count: int,
    number: str | None,
    keyid: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The next `count` recipients (only `number`'s, only `keyid`'s when given) get `code`."""
    async with write_transaction(engine) as conn:
        if keyid is not None and not await reads.account_exists(conn, keyid):
            raise InvalidFieldError("keyid", f"no account {keyid!r}")
        row = (
            await conn.execute(
                insert(faults)
                .values(code=code, remaining=count, number=number, keyid=keyid, created_at=now)
                .returning(*faults.c)
            )
        ).one()
    return reads.fault_item(row._mapping)


async def clear_faults(engine: AsyncEngine) -> int:
    """Remove every injected fault; how many there were."""
    async with write_transaction(engine) as conn:
        return (await conn.execute(delete(faults))).rowcount


async def reset_messages(engine: AsyncEngine) -> dict[str, int]:
    """Forget every message (children first, for the foreign keys); emailIds become new again.
    Accounts and faults stay."""
    deleted: dict[str, int] = {}
    async with write_transaction(engine) as conn:
        # Children first, for the foreign keys; the answer counts what a test sent and got.
        for table in (sms_to, sms_to_runs, sms, sms_groups, replies, email_ids, emails, sms_counts):
            count = (await conn.execute(delete(table))).rowcount
            if table.name in ("sms", "replies", "email_ids", "emails"):
                deleted[table.name] = count
    await give_space_back(engine)
    return deleted


async def recount_sms(conn: AsyncConnection) -> None:
    """The SMS counts (tables.sms_counts) rebuilt from the SMS rows, in the caller's write
    transaction: whatever deletes some SMS rows (retention) calls it before its commit."""
    await conn.execute(delete(sms_counts))
    await conn.execute(
        insert(sms_counts).from_select(
            ["account_id", "channel", "total"],
            select(sms_groups.c.account_id, sms_groups.c.channel, func.count())
            .select_from(SMS_WITH_GROUP)
            .group_by(sms_groups.c.account_id, sms_groups.c.channel),
        )
    )
