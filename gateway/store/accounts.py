"""Accounts: create, update, read, seed from config, and the snapshot the rules judge by."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.config import AccountSettings
from gateway.core.model import Account
from gateway.store.account_snapshot import read_snapshot
from gateway.store.tables import accounts

# The fields a client may set (the names of [[accounts]] in config), with their JSON lists.
LIST_FIELDS = ("domains", "senders", "allowed_ips", "blacklist")
FIELDS = tuple(AccountSettings.model_fields)
PUBLIC_COLUMNS = [c for c in accounts.c if c.name != "id"]
SEED_LOCK = 0x6D61696C32736D73  # "mail2sms": the advisory lock held while seeding accounts


def validate_fields(
    fields: Mapping[str, Any], *, partial: bool
) -> AccountSettings | dict[str, Any]:
    """Check client-given account fields with the config rules; a ValueError names the field."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; known: {sorted(FIELDS)}")
    if partial:
        base = AccountSettings(keyid="x").model_dump()
        merged = AccountSettings.model_validate({**base, **fields, "keyid": "x"})
        return {name: getattr(merged, name) for name in fields if name != "keyid"}
    return AccountSettings.model_validate(fields)


def _row_values(settings: AccountSettings | Mapping[str, Any]) -> dict[str, Any]:
    data = settings.model_dump() if isinstance(settings, AccountSettings) else dict(settings)
    for name in LIST_FIELDS:
        if name in data:
            data[name] = list(data[name])
    return data


async def create(conn: AsyncConnection, fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Create an account; login, password and keyid are generated when not given."""
    given = dict(fields)
    given.setdefault("keyid", secrets.token_hex(10))
    given.setdefault("login", f"user{secrets.token_hex(4)}")
    given.setdefault("password", secrets.token_urlsafe(12))
    settings = validate_fields(given, partial=False)
    assert isinstance(settings, AccountSettings)
    values = _row_values(settings)
    values["login"] = values["login"] or values["keyid"]
    await conn.execute(insert(accounts).values(**values, created_at=now))
    created = await get(conn, settings.keyid)
    assert created is not None
    return created


async def patch(
    conn: AsyncConnection, keyid: str, fields: Mapping[str, Any]
) -> dict[str, Any] | None:
    changes = validate_fields(fields, partial=True)
    assert isinstance(changes, dict)
    if changes:
        result = await conn.execute(
            update(accounts).where(accounts.c.keyid == keyid).values(**_row_values(changes))
        )
        if result.rowcount == 0:
            return None
    return await get(conn, keyid)


async def get(conn: AsyncConnection, keyid: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(*PUBLIC_COLUMNS).where(accounts.c.keyid == keyid))).first()
    return _public(row._asdict()) if row is not None else None


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(row)
    data["created_at"] = data["created_at"].isoformat()
    return data


async def seed(conn: AsyncConnection, configured: Sequence[AccountSettings], now: datetime) -> None:
    """Create the configured accounts when missing, else update them — except credit,
    which is set at creation only (the API and CLI manage it afterwards)."""
    if conn.dialect.name == "postgresql":
        # Replicas starting together on one database seed one after the other, or both insert.
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEED_LOCK})
    for settings in configured:
        values = _row_values(settings)
        values["login"] = values["login"] or settings.keyid
        values["password"] = values["password"] or secrets.token_urlsafe(12)
        existing = (
            await conn.execute(select(accounts.c.id).where(accounts.c.keyid == settings.keyid))
        ).first()
        if existing is None:
            await conn.execute(insert(accounts).values(**values, created_at=now))
        else:
            values.pop("credit")
            await conn.execute(
                update(accounts).where(accounts.c.id == existing.id).values(**values)
            )


_PASSWORD = select(accounts.c.password).where(accounts.c.login == bindparam("login"))


async def password_for(engine: AsyncEngine, login: str) -> str | None:
    """The password of the account with this login (SMTP AUTH compares it), None if none."""
    async with engine.connect() as conn:
        password: str | None = (await conn.execute(_PASSWORD, {"login": login})).scalar()
        return password


async def snapshot(conn: AsyncConnection, keyid: str, *, lock: bool) -> Account | None:
    return await conn.run_sync(lambda sync: read_snapshot(sync, keyid, lock=lock))


async def lookup(engine: AsyncEngine, keyid: str) -> Account | None:
    """The account as the rules see it, read outside any write transaction: what a channel
    checks before heavy work (the writer reads it again, locked, to decide)."""
    if not keyid:
        return None
    async with engine.connect() as conn:
        return await snapshot(conn, keyid, lock=False)
