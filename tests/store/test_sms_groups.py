"""The SMS of one request share one row of sms_groups and consecutive ids (tables.py): written
so by the writer and by migration 0005 from the SMS stored before it, their ids reserved in
blocks that never overlap across replicas, and every list reads them newest first, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import admin, migrate, reads, sms_ids
from gateway.store.engine import make_engine, write_transaction
from gateway.store.tables import sms, sms_groups
from tests.database import insert_flat
from tests.store.test_writer import apply, inbound, prepared

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await prepared(database_url)
    yield engine
    await engine.dispose()


async def _groups(engine: AsyncEngine) -> list[tuple[int, int, int | None]]:
    async with engine.connect() as conn:
        found = await conn.execute(
            select(sms_groups.c.id, sms_groups.c.last_id, sms_groups.c.email_row).order_by(
                sms_groups.c.id
            )
        )
        return [tuple(row) for row in found]  # type: ignore[misc]


async def test_the_writer_gives_a_requests_sms_one_group_of_consecutive_ids(
    engine: AsyncEngine,
) -> None:
    # (prepared(): 0601020305 is failed once by a fault, 0601020309 blacklisted)
    three = "<num1>0601020311</num1><num2>0601020312</num2><num3>0601020313</num3>"
    await apply(engine, [inbound(f"<keyid>demo</keyid>{three}<emailId>1</emailId>")])
    await apply(
        engine,
        [
            inbound("<keyid>demo</keyid><num>0601020307</num><emailId>2</emailId>"),
            inbound(f"<keyid>demo</keyid>{three}<emailId>3</emailId>"),
        ],
    )
    groups = await _groups(engine)
    assert [last - first + 1 for first, last, _ in groups] == [3, 1, 3]
    # Each starts right after the one before: one block, nothing between.
    assert [first for first, _, _ in groups[1:]] == [last + 1 for _, last, _ in groups[:-1]]
    async with engine.connect() as conn:
        members = (await conn.execute(select(sms.c.id, sms.c.group_id).order_by(sms.c.id))).all()
        assert [group for _, group in members] == [groups[0][0]] * 3 + [groups[1][0]] + [
            groups[2][0]
        ] * 3
        everything = await reads.list_sms(conn)
        by_account = await reads.list_sms(conn, account="demo")
        of_second = await reads.list_sms(conn, email_row=groups[1][2])
        by_email_id = await reads.list_sms(conn, email_id="3")
        # A keyset page that starts inside a group and ends in the one before it.
        deep = await reads.list_sms(conn, account="demo", limit=3, before_id=groups[2][0] + 1)
    ids = [item["id"] for item in everything.items]
    assert ids == sorted(ids, reverse=True) and len(ids) == 7
    assert by_account == everything and by_account.total == 7
    assert [(i["to"], i["email_id"]) for i in of_second.items] == [("0601020307", "2")]
    assert [i["to"] for i in by_email_id.items] == ["0601020313", "0601020312", "0601020311"]
    assert [i["id"] for i in deep.items] == ids[2:5]
    assert deep.total == 7


async def test_a_filter_on_a_group_column_and_one_of_the_sms_reads_both(
    engine: AsyncEngine,
) -> None:
    await apply(
        engine,
        [
            inbound(
                "<keyid>demo</keyid><num1>0601020304</num1><num2>0601020306</num2>"
                "<emailId>8</emailId>"
            ),
            inbound("<keyid>demo</keyid><num>0601020304</num><emailId>9</emailId>"),
        ],
    )
    async with engine.connect() as conn:
        found = await reads.list_sms(conn, to="0601020304", email_id="9")
        none = await reads.list_sms(conn, to="0601020306", email_id="9")
        emails = await reads.list_emails(conn, number="0601020306")
    assert [(i["to"], i["email_id"]) for i in found.items] == [("0601020304", "9")]
    assert (found.total, none.total, none.items) == (1, 0, [])
    assert [item["email_id"] for item in emails.items] == ["8"]


async def _autoincrement(engine: AsyncEngine) -> bool | None:
    """Whether SQLite's sms table has AUTOINCREMENT (None on PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return None
    async with engine.connect() as conn:
        sql = await conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'sms'")
        return "AUTOINCREMENT" in sql.scalar_one()


async def test_an_sms_id_is_never_given_twice_not_even_after_a_reset(
    engine: AsyncEngine,
) -> None:
    one = "<keyid>demo</keyid><num1>0601020311</num1><num2>0601020312</num2><emailId>{}</emailId>"
    await apply(engine, [inbound(one.format(1))])
    ((_, last, _),) = await _groups(engine)
    await admin.reset_messages(engine)
    await apply(engine, [inbound(one.format(1))])
    ((again, again_last, _),) = await _groups(engine)
    assert (again, again_last) == (last + 1, last + 2)
    assert await _autoincrement(engine) in (False, None)  # the ids come from id_counters


async def test_sqlite_blocks_on_the_driver_follow_those_on_sqlalchemy(tmp_path: Any) -> None:
    """The SQLite writer reserves on its driver connection (sms_ids.reserve_on_sqlite): the same
    counter, moved on by the same block, as a reservation through SQLAlchemy."""
    engine = await prepared(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    try:
        async with write_transaction(engine) as conn:
            assert await conn.run_sync(sms_ids.blocks, [2]) == [1]
        with contextlib.closing(sqlite3.connect(tmp_path / "b.db")) as driver, driver:
            assert sms_ids.blocks(driver, [3, 1, 4]) == [3, 6, 7]
        async with write_transaction(engine) as conn:
            assert await conn.run_sync(sms_ids.reserve, 1) == 11
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_replicas_reserve_blocks_that_never_overlap(postgres_url: str) -> None:
    """A second writer's reservation waits for the first one's commit, then follows it."""
    engine = make_engine(postgres_url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as first, engine.connect() as second:
            await first.begin()
            await second.begin()
            begun = await first.run_sync(sms_ids.reserve, 5)
            waiting = asyncio.create_task(second.run_sync(sms_ids.reserve, 3))
            await _until_a_backend_waits_for_the_lock(engine)
            assert not waiting.done()
            await first.commit()
            assert await waiting == begun + 5
            await second.commit()
    finally:
        await engine.dispose()


async def _until_a_backend_waits_for_the_lock(engine: AsyncEngine) -> None:
    waits = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    deadline = asyncio.get_running_loop().time() + 10
    async with engine.connect() as conn:
        while not (await conn.execute(waits)).scalar_one():
            assert asyncio.get_running_loop().time() < deadline, "the second never waited"
            await asyncio.sleep(0.01)


# The SMS as revision 0004 stored them: two emails' SMS interleaved, one of them deleted, then
# SMS of the HTTP API at two instants.
OLD_SMS = (
    (1, 1, "0601020301", "mail", 0),
    (2, 1, "0601020302", "mail", 0),
    (3, 2, "0601020303", "mail", 0),
    (4, 1, "0601020304", "mail", 0),
    (5, 1, "0601020305", "mail", 0),
    (6, None, "0601020306", "http", 0),
    (7, None, "0601020307", "http", 0),
    (8, None, "0601020308", "http", 1),
    (9, None, "0601020309", "http", 1),
)
DELETED = 7  # a gap: the SMS before and after it make two groups


def _old_rows(conn: Connection) -> list[tuple[Any, ...]]:
    found = conn.exec_driver_sql(
        'SELECT id, email_row, "to", channel, email_id, account_id, created_at FROM sms ORDER BY id'
    )
    return [tuple(row) for row in found]


def _store_old(conn: Connection) -> None:
    _migrate(conn, "downgrade", "0004")
    conn.exec_driver_sql(
        "INSERT INTO accounts (keyid, login, password, domains, senders, allowed_ips, blacklist,"
        " created_at) VALUES ('a', 'a', 'a', '[]', '[]', '[]', '[]', CURRENT_TIMESTAMP)"
    )
    for email_row in (1, 2):
        conn.execute(
            text(
                "INSERT INTO emails (received_at, status, email_id, results, warnings, raw) "
                "VALUES (CURRENT_TIMESTAMP, 'processed', :email_id, '[]', '[]', :raw)"
            ),
            {"email_id": str(email_row), "raw": b""},
        )
    sqlite = conn.dialect.name == "sqlite"
    for sms_id, email_row, to, channel, later in OLD_SMS:
        inserted = conn.execute(
            text(
                'INSERT INTO sms (email_row, account_id, "to", sender, text, parts, encoding, '
                "email_id, created_at, channel) VALUES (:email_row, (SELECT id FROM accounts), "
                ":to, 's', 't', 1, 'gsm7', :email_id, :created_at, :channel) RETURNING id"
            ),
            {
                "email_row": email_row, "to": to, "channel": channel,
                "email_id": str(email_row) if email_row else None,
                "created_at": f"2026-12-01 09:00:0{later}.000000" if sqlite
                else NOW + timedelta(seconds=later),
            },
        )  # fmt: skip
        assert inserted.scalar_one() == sms_id
    conn.exec_driver_sql(f"DELETE FROM sms WHERE id = {DELETED}")
    conn.exec_driver_sql(  # as the writer of revision 0004 kept them
        "INSERT INTO sms_counts (account_id, channel, total) "
        "SELECT account_id, channel, COUNT(*) FROM sms GROUP BY account_id, channel"
    )


def _migrate(conn: Connection, direction: str, revision: str) -> None:
    from alembic import command

    config = migrate.alembic_config()
    config.attributes["connection"] = conn
    getattr(command, direction)(config, revision)


async def test_revision_0005_groups_the_sms_stored_before_and_gives_them_back(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            await conn.run_sync(_store_old)
            before = await conn.run_sync(_old_rows)
            await conn.run_sync(_migrate, "upgrade", "head")
        assert await _autoincrement(engine) in (False, None)  # None: PostgreSQL
        assert [(first, last) for first, last, _ in await _groups(engine)] == [
            (1, 2), (3, 3), (4, 5), (6, 6), (8, 9)
        ]  # fmt: skip
        async with engine.connect() as conn:
            listed = await reads.list_sms(conn)
            of_first = await reads.list_sms(conn, email_row=1)
            http = await reads.list_sms(conn, channel="http")
        assert [(i["id"], i["to"], i["channel"]) for i in listed.items] == [
            (row[0], row[2], row[3]) for row in reversed(before)
        ]
        assert [i["id"] for i in of_first.items] == [5, 4, 2, 1]
        assert [i["id"] for i in http.items] == [9, 8, 6]
        async with write_transaction(engine) as conn:  # the ids go on from the last one given
            (new,) = await conn.run_sync(
                insert_flat,
                [{"account_id": 1, "to": "0601020310", "sender": "s", "text": "t", "parts": 1,
                  "encoding": "gsm7", "created_at": NOW}],
            )  # fmt: skip
            await conn.exec_driver_sql(f"DELETE FROM sms WHERE id = {new}")
            await conn.exec_driver_sql(f"DELETE FROM sms_groups WHERE id = {new}")
        assert new == 10
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "downgrade", "0004")
            assert await conn.run_sync(_old_rows) == before
            if conn.dialect.name == "sqlite":  # AUTOINCREMENT back, from the last id given
                sql = await conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'sms'")
                assert "AUTOINCREMENT" in sql.scalar_one()
                seq = "SELECT seq FROM sqlite_sequence WHERE name = 'sms'"
                assert (await conn.exec_driver_sql(seq)).scalar_one() == 10
            await conn.run_sync(_migrate, "upgrade", "head")
    finally:
        await engine.dispose()
