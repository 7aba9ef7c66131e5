"""The HTTP API's directories (répertoires): an account's named lists of numbers with fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import directories, directory_entries

MAX_ID = 2**63 - 1  # an id any backend can compare; a larger one names no directory
_REFIELD = (
    update(directory_entries)
    .where(
        directory_entries.c.directory_id == bindparam("b_directory"),
        directory_entries.c.number == bindparam("b_number"),
    )
    .values(fields=bindparam("b_fields"))
)


async def create(conn: AsyncConnection, account_id: int, name: str, now: datetime) -> int:
    """A new empty directory of the account; its id."""
    created = await conn.execute(
        insert(directories)
        .values(account_id=account_id, name=name, created_at=now)
        .returning(directories.c.id)
    )
    return int(created.scalar_one())


async def _locked(conn: AsyncConnection, account_id: int, directory_id: int) -> bool:
    """Whether the directory is the account's, its row held until the transaction ends so that
    concurrent edits of one directory take turns (SQLite's write transaction already does)."""
    if not 0 < directory_id <= MAX_ID:
        return False
    query = select(directories.c.id).where(
        directories.c.id == directory_id, directories.c.account_id == account_id
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await conn.execute(query)).first() is not None


async def add(
    conn: AsyncConnection,
    account_id: int,
    directory_id: int,
    entries: Mapping[str, Mapping[str, str]],
    now: datetime,
) -> bool:
    """Add normalised numbers with their fields (inside a write transaction); a number already
    there keeps its place and takes the new fields. False: not this account's directory."""
    if not await _locked(conn, account_id, directory_id):
        return False
    if not entries:
        return True
    present = set(
        (
            await conn.execute(
                select(directory_entries.c.number).where(
                    directory_entries.c.directory_id == directory_id,
                    directory_entries.c.number.in_(list(entries)),
                )
            )
        ).scalars()
    )
    if present:
        await conn.execute(
            _REFIELD,
            [
                {"b_directory": directory_id, "b_number": n, "b_fields": dict(entries[n])}
                for n in present
            ],
        )
    fresh = [
        {"directory_id": directory_id, "number": number, "fields": dict(fields), "created_at": now}
        for number, fields in entries.items()
        if number not in present
    ]
    if fresh:
        await conn.execute(insert(directory_entries), fresh)
    return True


async def remove(
    conn: AsyncConnection, account_id: int, directory_id: int, numbers: Sequence[str]
) -> set[str] | None:
    """Remove normalised numbers (inside a write transaction); the ones that were there.
    None: not this account's directory."""
    if not await _locked(conn, account_id, directory_id):
        return None
    wanted = list(dict.fromkeys(numbers))
    if not wanted:
        return set()
    removed = await conn.execute(
        delete(directory_entries)
        .where(
            directory_entries.c.directory_id == directory_id,
            directory_entries.c.number.in_(wanted),
        )
        .returning(directory_entries.c.number)
    )
    return set(removed.scalars())


async def directory_numbers(
    conn: AsyncConnection, account_id: int, directory_id: int
) -> list[str] | None:
    """The directory's numbers (normalised), oldest first; None: not this account's directory
    (or no such directory)."""
    if not 0 < directory_id <= MAX_ID:
        return None
    owned = await conn.execute(
        select(directories.c.id).where(
            directories.c.id == directory_id, directories.c.account_id == account_id
        )
    )
    if owned.first() is None:
        return None
    found = await conn.execute(
        select(directory_entries.c.number)
        .where(directory_entries.c.directory_id == directory_id)
        .order_by(directory_entries.c.created_at, directory_entries.c.number)
    )
    return list(found.scalars())
