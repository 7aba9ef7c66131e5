"""The SMS of a number (gateway/store/by_number.py): on SQLite found whether their entries in
sms_to are written yet (the writer adds them behind the SMS, in bulk) or not, in one order
across the two, by every list that filters on a number; entries kept exact by retention and
reset; migration 0006 fills the table from the SMS stored before it and gives the index back.
PostgreSQL keeps its index on the number: the same lists, the same answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.model import ReplyState
from gateway.store import admin, by_number, reads, retention
from gateway.store.engine import write_transaction
from gateway.store.sqlite_writer import SqliteWriter
from gateway.store.tables import id_counters, sms, sms_to, sms_to_runs
from gateway.store.writer import open_writer
from tests.database import insert_flat
from tests.store.test_sms_groups import _migrate
from tests.store.test_writer import RULES, inbound, prepared

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
A, B = "0601020311", "0601020312"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await prepared(database_url)
    yield engine
    await engine.dispose()


def _request(n: int, *numbers: str) -> str:
    tags = "".join(f"<num{k}>{number}</num{k}>" for k, number in enumerate(numbers, 1))
    return f"<keyid>demo</keyid>{tags}<emailId>{n}</emailId>"


async def _entries(engine: AsyncEngine) -> list[tuple[int, str, int]]:
    async with engine.connect() as conn:
        found = await conn.execute(select(sms_to).order_by(sms_to.c.id))
        return [(run, to, sms_id) for run, to, sms_id in found]


async def _runs(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(sms_to_runs.c.run))).scalars())


async def _ids(engine: AsyncEngine, **filters: object) -> tuple[list[int], int]:
    async with engine.connect() as conn:
        page = await reads.list_sms(conn, **filters)  # type: ignore[arg-type]
    return [item["id"] for item in page.items], page.total


async def _store_three_batches(engine: AsyncEngine) -> dict[str, list[int]]:
    """Batches 1 and 2 with their entries written (SQLite: caught up after each, two runs),
    batch 3 without (the tail); the SMS ids of each number, oldest first."""
    writer = open_writer(engine, RULES, ReplyState.PENDING)
    try:
        await writer.apply([inbound(_request(1, A, B)), inbound(_request(2, B))], NOW)
        if isinstance(writer, SqliteWriter):
            assert writer.catch_up(at_least=1) == 3
        await writer.apply([inbound(_request(3, A)), inbound(_request(4, B, A))], NOW)
        if isinstance(writer, SqliteWriter):
            assert writer.catch_up(at_least=1) == 3
            assert writer.catch_up(at_least=1) == 0  # nothing left
        await writer.apply([inbound(_request(5, A, B)), inbound(_request(6, A))], NOW)
    finally:
        writer.close()
    async with engine.connect() as conn:
        rows = (await conn.execute(select(sms.c.id, sms.c.to).order_by(sms.c.id))).all()
    return {number: [i for i, to in rows if to == number] for number in (A, B)}


async def test_a_numbers_sms_come_newest_first_from_the_tail_then_the_entries(
    engine: AsyncEngine,
) -> None:
    stored = await _store_three_batches(engine)
    assert len(stored[A]) == 5 and len(stored[B]) == 4
    entries = await _entries(engine)
    if engine.dialect.name == "sqlite":  # batch 3's three SMS wait, the six before have theirs
        assert [run for run, _, _ in entries] == [1, 1, 1, 4, 4, 4] and await _runs(engine) == [
            1,
            4,
        ]
        assert max(i for _, _, i in entries) < min(stored[A][-2:])
    else:  # PostgreSQL finds them by its index on the number
        assert entries == [] and await _runs(engine) == []
    for number in (A, B):
        newest_first = stored[number][::-1]
        assert await _ids(engine, to=number) == (newest_first, len(newest_first))
        # Page by page by keyset, one SMS at a time, across the tail's end.
        walked: list[int] = []
        before: int | None = None
        while True:
            page, total = await _ids(engine, to=number, limit=1, before_id=before)
            assert total == len(newest_first)
            if not page:
                break
            walked += page
            before = page[-1]
        assert walked == newest_first
        # By offset, the same pages.
        for offset in range(len(newest_first) + 1):
            page, _ = await _ids(engine, to=number, limit=2, offset=offset)
            assert page == newest_first[offset : offset + 2]
    # With the other filters: on the group's columns and on the SMS's own.
    assert await _ids(engine, to=A, account="demo", email_id="4") == ([stored[A][2]], 1)
    assert await _ids(engine, to=A, account="nope") == ([], 0)
    assert await _ids(engine, to=B, tracker="") == (stored[B][::-1], 4)
    assert await _ids(engine, to="0601020399") == ([], 0)
    async with engine.connect() as conn:
        emails = await reads.list_emails(conn, number=B)
        replies = await reads.list_replies(conn, number="0601020399")
    assert [e["email_id"] for e in emails.items] == ["5", "4", "2", "1"]
    assert replies.total == 0


async def test_sqlites_writer_writes_the_entries_once_enough_wait(tmp_path: object) -> None:
    engine = await prepared(f"sqlite+aiosqlite:///{tmp_path}/g.db")
    writer = SqliteWriter(engine.url, RULES, ReplyState.PENDING)
    try:
        assert writer.catching_up_due()  # unknown until read
        await writer.apply([inbound(_request(1, A, B))], NOW)
        # Read once after the first batch: two SMS wait, fewer than by_number.TAIL.
        assert not writer.catching_up_due() and await _entries(engine) == []
        assert writer.catch_up(at_least=3) == 0  # still too few: nothing written
        await writer.apply([inbound(_request(2, A))], NOW)
        assert writer.catch_up(at_least=3) == 3
        assert await _entries(engine) == [(1, A, 1), (1, B, 2), (1, A, 3)]
        async with engine.connect() as conn:
            done, given = await conn.run_sync(by_number.pending)
        assert done == given == 3
    finally:
        writer.close()
        await engine.dispose()


async def test_the_writer_catches_up_by_itself_past_the_tails_length(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(by_number, "TAIL", 4)
    engine = await prepared(f"sqlite+aiosqlite:///{tmp_path}/g.db")
    writer = SqliteWriter(engine.url, RULES, ReplyState.PENDING)
    try:
        await writer.apply([inbound(_request(1, A, B, "0601020313"))], NOW)
        assert await _entries(engine) == []  # 3 wait: fewer than 4
        await writer.apply([inbound(_request(2, A, B))], NOW)
        assert len(await _entries(engine)) == 5  # 5 waited: all written after that batch
        assert await _ids(engine, to=A) == ([4, 1], 2)
    finally:
        writer.close()
        await engine.dispose()


async def test_retention_and_reset_take_the_entries_with_their_sms(engine: AsyncEngine) -> None:
    stored = await _store_three_batches(engine)
    # The first batch's two emails go, with the oldest SMS of each number.
    deleted = await retention.prune(engine, older_than=None, keep_emails=4)
    assert deleted["sms"] == 3
    entries = await _entries(engine)
    assert all(sms_id > max(stored[B][:2]) for _, _, sms_id in entries)
    if engine.dialect.name == "sqlite":  # run 1 held batch 1's SMS only: gone with them
        assert await _runs(engine) == [4]
    assert await _ids(engine, to=B) == (stored[B][:1:-1], 2)
    await admin.reset_messages(engine)
    assert await _entries(engine) == [] and await _runs(engine) == []
    assert await _ids(engine, to=A) == ([], 0)


def _sms_indexes(conn: Connection) -> set[str]:
    return {str(index["name"]) for index in inspect(conn).get_indexes("sms")}


def _counter(conn: Connection) -> int | None:
    found = conn.execute(select(id_counters.c.last).where(id_counters.c.name == "sms_to"))
    return found.scalar()


async def test_revision_0006_fills_sms_to_and_gives_the_index_back(database_url: str) -> None:
    engine = await prepared(database_url)
    try:
        stored = await _store_three_batches(engine)
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "downgrade", "0005")
            await conn.run_sync(_migrate, "upgrade", "head")
        sqlite = engine.dialect.name == "sqlite"
        async with engine.connect() as conn:
            complete_to = await conn.run_sync(_counter)
            last = (await conn.execute(select(func.max(sms.c.id)))).scalar()
            indexes = await conn.run_sync(_sms_indexes)
        if sqlite:  # every SMS entered, the tail's too, and no index on the number
            assert len(await _entries(engine)) == 9 and complete_to == last
            assert "ix_sms_to_id" not in indexes
        else:
            assert await _entries(engine) == [] and complete_to is None
            assert "ix_sms_to_id" in indexes
        assert await _ids(engine, to=A) == (stored[A][::-1], 5)
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "downgrade", "0005")
            assert "ix_sms_to_id" in await conn.run_sync(_sms_indexes)
            await conn.run_sync(_migrate, "upgrade", "head")
    finally:
        await engine.dispose()


async def test_a_numbers_page_reads_by_key_without_sorting(
    engine: AsyncEngine,
) -> None:
    await _store_three_batches(engine)
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, params))

    async with engine.connect() as conn:
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        await reads.list_sms(conn, to=A, limit=2)
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        assert len(statements) == 2  # the total, then the page
        if conn.dialect.name == "sqlite":  # merged by run, then id, newest first
            assert "ORDER BY order_0 DESC, order_1 DESC" in statements[1][0], statements[1][0]
        sqlite = conn.dialect.name == "sqlite"
        if not sqlite:  # with a few rows it would rather scan and sort: whether it can avoid it
            await conn.exec_driver_sql("SET enable_seqscan = off")
            await conn.exec_driver_sql("SET enable_sort = off")
        for statement, params in statements:
            explain = "EXPLAIN QUERY PLAN" if sqlite else "EXPLAIN"
            found = await conn.exec_driver_sql(f"{explain} {statement}", params)
            plan = " | ".join(str(row[-1] if sqlite else row[0]) for row in found)
            if sqlite:
                assert "SEARCH sms_to USING PRIMARY KEY (run=? AND to=?" in plan, plan
                assert "SEARCH sms USING INTEGER PRIMARY KEY (rowid>?)" in plan, plan
                assert "TEMP B-TREE" not in plan and "SCAN sms" not in plan, plan
            else:  # by the index on the number, no tail
                assert "ix_sms_to_id" in plan and "sms_to " not in plan, plan
                assert "Seq Scan" not in plan and "Sort" not in plan, plan


async def test_a_failed_catch_up_is_logged_and_the_sms_stay_found(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = await prepared(f"sqlite+aiosqlite:///{tmp_path}/g.db")
    writer = SqliteWriter(engine.url, RULES, ReplyState.PENDING)

    def broken(conn: Connection, at_least: int) -> tuple[int, int]:
        raise OSError("disk I/O error")

    try:
        await writer.apply([inbound(_request(1, A))], NOW)
        monkeypatch.setattr(by_number, "catch_up", broken)
        assert writer.catch_up(at_least=1) == 0
        assert "could not be added to sms_to" in caplog.text
        await writer.apply([inbound(_request(2, A))], NOW)  # the writer goes on
        assert await _ids(engine, to=A) == ([2, 1], 2)
        monkeypatch.undo()
        assert writer.catch_up(at_least=1) == 2
        assert await _ids(engine, to=A) == ([2, 1], 2)
    finally:
        writer.close()
        await engine.dispose()


async def test_the_writer_process_catches_up_once_it_has_answered(tmp_path: object) -> None:
    engine = await prepared(f"sqlite+aiosqlite:///{tmp_path}/g.db")
    waiting = [
        {"account_id": 1, "to": f"06010{n % 997:05d}", "sender": "s", "text": "t", "parts": 1,
         "encoding": "gsm7", "created_at": NOW}
        for n in range(by_number.TAIL)
    ]  # fmt: skip
    async with write_transaction(engine) as conn:  # SMS the writer did not enter
        await conn.run_sync(insert_flat, waiting)
    writer = open_writer(engine, RULES, ReplyState.PENDING, own_process=True)
    try:
        (written,) = await writer.apply([inbound(_request(1, A))], NOW)
        assert written.codes == (0,)
        deadline = time.monotonic() + 30
        while len(entries := await _entries(engine)) < by_number.TAIL + 1:
            assert time.monotonic() < deadline, f"{len(entries)} entries"
            await asyncio.sleep(0.05)
        assert entries[-1] == (1, A, by_number.TAIL + 1) and await _runs(engine) == [1]
    finally:
        writer.close()
        await engine.dispose()


async def test_a_catch_up_over_ids_whose_sms_are_gone_makes_no_run(tmp_path: object) -> None:
    engine = await prepared(f"sqlite+aiosqlite:///{tmp_path}/g.db")
    writer = SqliteWriter(engine.url, RULES, ReplyState.PENDING)
    try:
        await writer.apply([inbound(_request(1, A, B))], NOW)
        await admin.reset_messages(engine)
        assert writer.catch_up(at_least=1) == 2  # the two ids given: past them now
        assert await _runs(engine) == [] and await _entries(engine) == []
        await writer.apply([inbound(_request(2, A))], NOW)
        assert writer.catch_up(at_least=1) == 1
        assert await _runs(engine) == [3] and await _ids(engine, to=A) == ([3], 1)
    finally:
        writer.close()
        await engine.dispose()
