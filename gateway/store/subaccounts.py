"""Sub-accounts of the HTTP API: created under a parent, credit moved from it, restrictions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store import accounts as account_store
from gateway.store.engine import write_transaction
from gateway.store.tables import accounts

# What a sub-account takes from its parent when created (its credit starts at 0).
INHERITED = (
    "domains",
    "senders",
    "nostop_allowed",
    "quiet_hours_lifted",
    "international_allowed",
)

# Takes `amount` from the parent only if its credit covers it: never below zero, whoever races
# (a concurrent send's debit included).
_TAKE = (
    update(accounts)
    .where(accounts.c.id == bindparam("b_parent"), accounts.c.credit >= bindparam("b_amount"))
    .values(credit=accounts.c.credit - bindparam("b_amount"))
)
_GIVE = (
    update(accounts)
    .where(accounts.c.id == bindparam("b_child"))
    .values(credit=accounts.c.credit + bindparam("b_amount"))
)


async def create(
    engine: AsyncEngine, parent_id: int, login: str, password: str, now: datetime
) -> dict[str, Any] | None:
    """A new account under `parent_id` with its own keyid; None when the login is taken."""
    inherited = [accounts.c[name] for name in INHERITED]
    try:
        async with write_transaction(engine) as conn:
            taken = await conn.execute(select(accounts.c.id).where(accounts.c.login == login))
            if taken.first() is not None:
                return None
            parent = (
                await conn.execute(select(*inherited).where(accounts.c.id == parent_id))
            ).one()
            fields = {name: getattr(parent, name) for name in INHERITED}
            created = await account_store.create(
                conn, {**fields, "login": login, "password": password, "credit": 0}, now
            )
            child_id = (
                await conn.execute(select(accounts.c.id).where(accounts.c.login == login))
            ).scalar_one()
            await conn.execute(
                update(accounts).where(accounts.c.id == child_id).values(parent_id=parent_id)
            )
    except IntegrityError:
        # Another transaction took the login between our check and our insert (PostgreSQL).
        return None
    return {**created, "id": int(child_id), "parent_id": parent_id}


async def child(conn: AsyncConnection, parent_id: int, keyid: str) -> int | None:
    """The id of the account `keyid` if it is a sub-account of `parent_id`, else None."""
    found = await conn.execute(
        select(accounts.c.id).where(accounts.c.keyid == keyid, accounts.c.parent_id == parent_id)
    )
    row = found.first()
    return int(row.id) if row is not None else None


async def move_credit(conn: AsyncConnection, parent_id: int, child_id: int, amount: int) -> bool:
    """Move `amount` SMS of credit from the parent to the child (inside a write transaction);
    False, and nothing moved, when the parent's credit does not cover it."""
    taken = await conn.execute(_TAKE, {"b_parent": parent_id, "b_amount": amount})
    if taken.rowcount != 1:
        return False
    await conn.execute(_GIVE, {"b_child": child_id, "b_amount": amount})
    return True


async def set_restrictions(
    conn: AsyncConnection,
    child_id: int,
    *,
    nostop_allowed: bool | None,
    quiet_hours_lifted: bool | None,
) -> None:
    """Change the given flags (None leaves one as it is)."""
    values = {
        name: value
        for name, value in (
            ("nostop_allowed", nostop_allowed),
            ("quiet_hours_lifted", quiet_hours_lifted),
        )
        if value is not None
    }
    if values:
        await conn.execute(update(accounts).where(accounts.c.id == child_id).values(**values))


async def set_price(conn: AsyncConnection, child_id: int, price: str) -> None:
    """Record the price (the emulator has no money: it is only shown)."""
    await conn.execute(update(accounts).where(accounts.c.id == child_id).values(price=price))
