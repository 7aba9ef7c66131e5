"""The HTTP API's short links: a random code per URL, followed (and counted) at /s/<code>."""

from __future__ import annotations

import secrets
import string
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import StorageError
from gateway.store.engine import write_transaction
from gateway.store.tables import shortlinks

ALPHABET = string.ascii_letters + string.digits  # URL-safe without quoting, unambiguous in paths
CODE_LENGTH = 6  # 62**6 ≈ 5.7e10 codes: a clash is rare, and retried
ATTEMPTS = 8


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


async def create(engine: AsyncEngine, account_id: int, url: str, now: datetime) -> str:
    """Store `url` under a new unique code; the code."""
    for _ in range(ATTEMPTS):
        code = new_code()
        try:
            async with write_transaction(engine) as conn:
                await conn.execute(
                    insert(shortlinks).values(
                        code=code, url=url, account_id=account_id, created_at=now
                    )
                )
        except IntegrityError:
            continue  # the code was taken (the unique constraint decides, across replicas)
        return code
    raise StorageError(f"no free short-link code after {ATTEMPTS} attempts")


async def follow(engine: AsyncEngine, code: str) -> str | None:
    """The URL of `code`, its hit counted; None for an unknown code."""
    async with write_transaction(engine) as conn:
        found = await conn.execute(
            update(shortlinks)
            .where(shortlinks.c.code == code)
            .values(hits=shortlinks.c.hits + 1)
            .returning(shortlinks.c.url)
        )
        url = found.scalar_one_or_none()
    return None if url is None else str(url)
