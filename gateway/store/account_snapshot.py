"""The account as the rules see it, read on a synchronous connection: what the writers decide
by. Apart from accounts.py (which checks fields with the config's rules) so that the writer
process imports neither pydantic nor the async engine (~15 MiB of its RSS, bench/)."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select

from gateway.core.model import Account
from gateway.store.tables import accounts

_SNAPSHOT = select(
    accounts.c.id,
    accounts.c.keyid,
    accounts.c.domains,
    accounts.c.credit,
    accounts.c.senders,
    accounts.c.nostop_allowed,
    accounts.c.quiet_hours_lifted,
    accounts.c.international_allowed,
    accounts.c.allowed_ips,
    accounts.c.blacklist,
    accounts.c.rate_limit,
).where(accounts.c.keyid == bindparam("keyid"))
_SNAPSHOT_LOCKED = _SNAPSHOT.with_for_update()


def read_snapshot(conn: Connection, keyid: str, *, lock: bool) -> Account | None:
    """The account as the rules see it; `lock` holds its row until the transaction ends
    (PostgreSQL; SQLite's write transaction already excludes every other writer)."""
    locked = lock and conn.dialect.name == "postgresql"
    row = conn.execute(_SNAPSHOT_LOCKED if locked else _SNAPSHOT, {"keyid": keyid}).first()
    if row is None:
        return None
    return Account(
        id=row.id,
        keyid=row.keyid,
        domains=frozenset(d.lower() for d in row.domains),
        credit=row.credit,
        senders=frozenset(row.senders),
        nostop_allowed=row.nostop_allowed,
        quiet_hours_lifted=row.quiet_hours_lifted,
        international_allowed=row.international_allowed,
        allowed_ips=tuple(row.allowed_ips),
        blacklist=frozenset(row.blacklist),
        rate_limit=row.rate_limit,
    )
