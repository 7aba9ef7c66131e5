"""The admin writes the API and the CLI share, on each backend: accounts, faults, reset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.config import DEMO_ACCOUNT
from gateway.errors import ConflictError, InvalidFieldError, NotFoundError
from gateway.store import accounts, admin, migrate, reads
from gateway.store.engine import make_engine, write_transaction
from gateway.store.tables import email_ids, emails, faults, replies, sms, sms_counts
from tests.database import insert_flat

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database (each backend in turn) with the demo account."""
    engine = make_engine(database_url)
    await migrate.upgrade(engine)
    async with write_transaction(engine) as conn:
        await accounts.seed(conn, [DEMO_ACCOUNT], NOW)
    yield engine
    await engine.dispose()


async def test_create_account_generates_keyid_login_and_password(engine: AsyncEngine) -> None:
    account = await admin.create_account(engine, {"credit": 5}, NOW)
    assert account["keyid"] and account["login"] and account["password"]
    assert (account["credit"], account["created_at"]) == (5, NOW.isoformat())


async def test_create_account_with_a_taken_keyid_is_a_conflict_naming_keyid(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(ConflictError) as refused:
        await admin.create_account(engine, {"keyid": "demo", "login": "other"}, NOW)
    assert (refused.value.field, refused.value.reason) == (
        "keyid",
        "an account 'demo' already exists",
    )


async def test_create_account_with_a_taken_login_is_a_conflict_naming_login(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(ConflictError) as refused:
        await admin.create_account(engine, {"keyid": "new", "login": "demo"}, NOW)
    assert refused.value.field == "login"
    assert str(refused.value) == "login: 'demo' is taken by another account"


async def test_create_account_with_an_unknown_field_names_it(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidFieldError, match=r"^colour: unknown field; known: keyid, "):
        await admin.create_account(engine, {"colour": "red"}, NOW)


async def test_create_account_with_a_bad_value_names_the_field(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidFieldError) as refused:
        await admin.create_account(engine, {"credit": -1}, NOW)
    assert refused.value.field == "credit"
    assert "(got -1)" in refused.value.reason


async def test_patch_account_of_no_account_is_not_found(engine: AsyncEngine) -> None:
    with pytest.raises(NotFoundError, match="no account with keyid 'nobody'"):
        await admin.patch_account(engine, "nobody", {"credit": 1})


async def test_patch_account_to_a_taken_login_is_a_conflict_naming_login(
    engine: AsyncEngine,
) -> None:
    await admin.create_account(engine, {"keyid": "b", "login": "b"}, NOW)
    with pytest.raises(ConflictError) as refused:
        await admin.patch_account(engine, "b", {"login": "demo"})
    assert refused.value.field == "login"


async def test_patch_account_cannot_change_the_keyid(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidFieldError, match=r"^keyid: cannot be changed$"):
        await admin.patch_account(engine, "demo", {"keyid": "other"})


async def test_patch_account_computes_its_changes_from_the_account_as_it_is(
    engine: AsyncEngine,
) -> None:
    def add_credit(current: dict[str, Any]) -> dict[str, Any]:
        return {"credit": current["credit"] + 5}

    account = await admin.patch_account(engine, "demo", add_credit)
    assert account["credit"] == DEMO_ACCOUNT.credit + 5


async def test_add_fault_for_no_account_names_keyid(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidFieldError, match=r"^keyid: no account 'nobody'$"):
        await admin.add_fault(engine, code=29, count=1, number=None, keyid="nobody", now=NOW)


async def test_add_fault_is_listed_with_its_remaining_count(engine: AsyncEngine) -> None:
    fault = await admin.add_fault(
        engine, code=29, count=3, number="0601020304", keyid="demo", now=NOW
    )
    async with engine.connect() as conn:
        assert await reads.list_faults(conn) == [fault]
    assert (fault["remaining"], fault["created_at"]) == (3, NOW.isoformat())


async def test_clear_faults_counts_what_it_removed(engine: AsyncEngine) -> None:
    for code in (21, 29):
        await admin.add_fault(engine, code=code, count=1, number=None, keyid=None, now=NOW)
    assert await admin.clear_faults(engine) == 2
    assert await _count(engine, faults) == 0


async def test_reset_messages_forgets_messages_and_keeps_accounts_and_faults(
    engine: AsyncEngine,
) -> None:
    await admin.add_fault(engine, code=29, count=1, number=None, keyid=None, now=NOW)
    async with write_transaction(engine) as conn:
        demo = await accounts.snapshot(conn, "demo", lock=False)
        assert demo is not None
        account = demo.id
        email_row = await conn.scalar(
            insert(emails)
            .values(received_at=NOW, status="processed", results=[], warnings=[], raw=b"")
            .returning(emails.c.id)
        )
        await conn.execute(insert(email_ids).values(account_id=account, email_id="7"))
        await conn.run_sync(
            insert_flat,
            [
                {"email_row": email_row, "account_id": account, "to": "0601020304",
                 "sender": "36111", "text": "x", "parts": 1, "encoding": "gsm7",
                 "created_at": NOW}
            ],
        )  # fmt: skip
        await conn.execute(
            insert(replies).values(
                email_row=email_row,
                kind="ack",
                to="a@example.com",
                body="",
                state="kept",
                created_at=NOW,
            )
        )
    deleted = await admin.reset_messages(engine)
    assert deleted == {"sms": 1, "replies": 1, "email_ids": 1, "emails": 1}
    assert (await _count(engine, faults), await _count(engine, emails)) == (1, 0)
    async with engine.connect() as conn:
        assert await reads.account_exists(conn, "demo")


async def _sms(conn: AsyncConnection, account: int, channel: str, count: int) -> None:
    await conn.run_sync(
        insert_flat,
        [
            {"account_id": account, "to": "0601020304", "sender": "36111", "text": "x",
             "parts": 1, "encoding": "gsm7", "created_at": NOW, "channel": channel}
            for _ in range(count)
        ],
    )  # fmt: skip


async def test_recount_sms_counts_the_rows_left_per_account_and_channel(
    engine: AsyncEngine,
) -> None:
    async with write_transaction(engine) as conn:
        demo = await accounts.snapshot(conn, "demo", lock=False)
        assert demo is not None
        await _sms(conn, demo.id, "mail", 3)
        await _sms(conn, demo.id, "http", 2)
        await admin.recount_sms(conn)
        await conn.execute(delete(sms).where(sms.c.id == 1))  # retention takes one
        await admin.recount_sms(conn)
        kept = {tuple(row) for row in await conn.execute(select(sms_counts))}
    assert kept == {(demo.id, "mail", 2), (demo.id, "http", 2)}


async def test_reset_messages_forgets_the_sms_counts(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as conn:
        demo = await accounts.snapshot(conn, "demo", lock=False)
        assert demo is not None
        await _sms(conn, demo.id, "mail", 1)
        await admin.recount_sms(conn)
    await admin.reset_messages(engine)
    assert await _count(engine, sms_counts) == 0


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)
