"""The writer: one batch in one transaction, the same rows on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Column, MetaData, Table, create_engine, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import AccountSettings
from gateway.core import codes, intake
from gateway.core.model import (
    EmailStatus,
    HttpCall,
    Inbound,
    ReadLimits,
    Recipient,
    ReplyState,
    RuleSettings,
    Sms,
)
from gateway.core.replies import NotReport
from gateway.errors import ProcessingError
from gateway.store import account_snapshot, json_columns, migrate, reads
from gateway.store import accounts as account_store
from gateway.store.batch import SMS_FIELDS, SmsRows
from gateway.store.engine import make_engine, write_transaction
from gateway.store.postgres_writer import PostgresWriter
from gateway.store.sqlite_writer import DriverInsert, SqliteWriter
from gateway.store.tables import (
    SMS_WITH_GROUP,
    accounts,
    email_ids,
    emails,
    faults,
    metadata,
    replies,
    sms,
    sms_counts,
    sms_groups,
)
from gateway.store.writer import Writer, Written, open_writer
from gateway.store.writer_process import Pickled, ProcessWriter, _frame

NOW = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)  # a Tuesday, 10:00 in Paris
RULES = RuleSettings(max_recipients=3)
LIMITS = ReadLimits(max_recipients=3)
ACCOUNTS = (
    AccountSettings(
        keyid="demo",
        login="demo",
        password="demo",
        domains=("example.com",),
        credit=1000,
        senders=("MaSociete",),
        blacklist=("0601020309",),
    ),
    AccountSettings(keyid="poor", login="poor", password="poor", domains=("poor.test",), credit=2),
)


def mail(envoi: str, *, sender: str = "app@example.com", html: bool = False) -> bytes:
    kind = "text/html" if html else "text/plain"
    return (
        f"From: {sender}\r\nTo: sendsms@isendpro-api.com\r\nSubject: s\r\n"
        f"Message-ID: <{abs(hash(envoi))}@test>\r\nContent-Type: {kind}; charset=utf-8\r\n\r\n"
        f"<envoi>{envoi}</envoi>\r\n"
    ).encode()


def inbound(envoi: str, *, sender: str = "app@example.com", html: bool = False) -> Inbound:
    raw = mail(envoi, sender=sender, html=html)
    return intake.read(raw, envelope_from=sender, client_ip="127.0.0.1", limits=LIMITS)


REPLIES = "<emailAck>ack@example.com</emailAck><emailNot>not@example.com</emailNot>"
# Every rung of the ladder, emails of two accounts, a fault, a debit cut short by the credit.
BATCH = (
    inbound("<keyid>demo</keyid><num>0601020304</num><sms>x</sms>", html=True),
    inbound("<keyid>nope</keyid><num>0601020304</num><emailId>1</emailId>"),
    inbound("<keyid>demo</keyid><num>0601020304</num><emailId>1</emailId>", sender="a@b.test"),
    inbound(f"<keyid>demo</keyid><num>0601020304</num>{REPLIES}"),
    inbound(
        "<keyid>demo</keyid><num1>0601020304</num1><num2>0601020309</num2>"
        "<num3>0601020305</num3><sms>Bonjour Ö à vous €</sms><emetteur>MaSociete</emetteur>"
        f"<tracker>t-1</tracker><nostop>1</nostop><emailId>7</emailId>{REPLIES}"
    ),
    inbound(f"<keyid>demo</keyid><num>0601020306</num><emailId>7</emailId>{REPLIES}"),
    inbound(
        "<keyid>demo</keyid><num1>0601020304</num1><num2>0601020305</num2>"
        f"<num3>0601020306</num3><num4>0601020307</num4><emailId>8</emailId>{REPLIES}"
    ),
    inbound(
        "<keyid>poor</keyid><num1>0601020304</num1><num2>0601020305</num2>"
        "<num3>0601020306</num3><emailId>1</emailId>"
        "<emailAck>a@x.test, b@y.test</emailAck><emailNot>not@poor.test</emailNot>",
        sender="app@poor.test",
    ),
)


async def prepared(url: str) -> AsyncEngine:
    """The database at head, with the two accounts and a fault that forces one recipient."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        await migrate.upgrade(engine)
    async with write_transaction(engine) as conn:
        await account_store.seed(conn, ACCOUNTS, NOW)
        await conn.execute(
            insert(faults).values(code=22, remaining=1, number="0601020305", created_at=NOW)
        )
    return engine


async def apply(engine: AsyncEngine, batch: Sequence[Inbound]) -> list[Written]:
    writer = open_writer(engine, RULES, ReplyState.PENDING)
    try:
        return await writer.apply(batch, NOW)
    finally:
        writer.close()


def one_number_requests(count: int) -> list[Inbound]:
    """Requests of one number each, emailIds 0 to count - 1."""
    return [
        inbound(f"<keyid>demo</keyid><num>0601020304</num><emailId>{n}</emailId>")
        for n in range(count)
    ]


async def two_databases(tmp_path: Path) -> tuple[AsyncEngine, AsyncEngine]:
    """Two databases prepared alike: one for the thread writer, one for the process writer."""
    return (
        await prepared(f"sqlite+aiosqlite:///{tmp_path / 't.db'}"),
        await prepared(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"),
    )


async def same_rows_then_disposed(one: AsyncEngine, other: AsyncEngine) -> None:
    assert await stored_rows(one) == await stored_rows(other)
    await one.dispose()
    await other.dispose()


async def stored_rows(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table the writer touches, without the generated ids: an account by
    its keyid, an email by its place among the emails."""
    async with engine.connect() as conn:
        keyids = dict((await conn.execute(select(accounts.c.id, accounts.c.keyid))).all())
        email_rows = (await conn.execute(select(emails.c.id).order_by(emails.c.id))).scalars()
        place = {row: n for n, row in enumerate(email_rows)}
        groups = (await conn.execute(select(sms_groups.c.id).order_by(sms_groups.c.id))).scalars()
        group_place = {row: n for n, row in enumerate(groups)}
        tables: dict[str, list[dict[str, Any]]] = {}
        for table in (accounts, emails, email_ids, sms_groups, sms, replies, faults, sms_counts):
            order = list(table.primary_key.columns)
            rows = (await conn.execute(select(table).order_by(*order))).mappings()
            tables[table.name] = [
                normalised(table, dict(row), keyids, place, group_place) for row in rows
            ]
    return tables


def normalised(
    table: Table,
    row: dict[str, Any],
    keyids: dict[int, str],
    place: dict[int, int],
    group_place: dict[int, int],
) -> dict[str, Any]:
    if table.autoincrement_column is not None:
        del row[table.autoincrement_column.name]
    if table is sms_groups:  # its ids are its SMS's: how many it has, not which
        row["last_id"] -= row.pop("id")
    if "group_id" in row:
        row["group_id"] = group_place[row["group_id"]]
    if "account_id" in row and row["account_id"] is not None:
        row["account_id"] = keyids[row["account_id"]]
    if "email_row" in row:
        row["email_row"] = place[row["email_row"]]
    return row


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await prepared(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    yield engine
    await engine.dispose()


@pytest.fixture
async def postgres_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await prepared(postgres_url)
    yield engine
    await engine.dispose()


@pytest.mark.postgres
async def test_sqlite_and_postgresql_write_the_same_rows(
    sqlite_engine: AsyncEngine, postgres_engine: AsyncEngine
) -> None:
    on_sqlite = await apply(sqlite_engine, BATCH)
    on_postgres = await apply(postgres_engine, BATCH)
    assert [(w.status, w.codes) for w in on_sqlite] == [(w.status, w.codes) for w in on_postgres]
    rows = await stored_rows(sqlite_engine)
    assert rows == await stored_rows(postgres_engine)
    # The batch is the one described: every table got rows of each kind.
    assert [w.status for w in on_sqlite] == [
        EmailStatus.NOT_PROCESSED,
        EmailStatus.REFUSED,
        EmailStatus.REFUSED,
        EmailStatus.REFUSED,
        EmailStatus.PROCESSED,
        EmailStatus.DUPLICATE,
        EmailStatus.PROCESSED,
        EmailStatus.PROCESSED,
    ]
    assert (len(rows["sms"]), len(rows["replies"]), len(rows["email_ids"])) == (3, 7, 3)
    assert [(a["keyid"], a["credit"]) for a in rows["accounts"]] == [("demo", 999), ("poor", 0)]
    assert [f["remaining"] for f in rows["faults"]] == [0]


async def test_the_sms_counts_kept_by_the_batches_are_the_sms_rows_counted(
    sqlite_engine: AsyncEngine,
) -> None:
    for half in (BATCH[:5], BATCH[5:]):  # the second batch adds to the counts of the first
        await apply(sqlite_engine, half)
    counted = (
        select(sms_groups.c.account_id, sms_groups.c.channel, func.count())
        .select_from(SMS_WITH_GROUP)
        .group_by(sms_groups.c.account_id, sms_groups.c.channel)
    )
    async with sqlite_engine.connect() as conn:
        kept = {tuple(row) for row in await conn.execute(select(sms_counts))}
        assert kept == {tuple(row) for row in await conn.execute(counted)}
    assert sum(total for _, _, total in kept) == 3


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite+aiosqlite:///{tmp}/k.db", SqliteWriter),
        ("postgresql+asyncpg://u@127.0.0.1:1/db", PostgresWriter),
    ],
    ids=["sqlite", "postgresql"],
)
async def test_the_writer_is_chosen_by_the_database(
    url: str, kind: type[Writer], tmp_path: Path
) -> None:
    engine = make_engine(url.format(tmp=tmp_path))
    writer = open_writer(engine, RULES, ReplyState.KEPT)
    try:
        assert isinstance(writer, kind)
    finally:
        writer.close()
        await engine.dispose()


async def test_a_rolled_back_batch_gives_its_rate_limit_tokens_back(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    async with write_transaction(sqlite_engine) as conn:
        await conn.execute(accounts.update().values(rate_limit=1))
    one = inbound("<keyid>demo</keyid><num>0601020304</num><emailId>1</emailId>")
    writer = open_writer(sqlite_engine, RULES, ReplyState.KEPT)
    database = str(tmp_path / "w.db")
    try:
        with contextlib.closing(sqlite3.connect(database)) as db, db:
            db.execute(
                "CREATE TRIGGER no_sms BEFORE INSERT ON sms BEGIN SELECT RAISE(ABORT, 'x'); END"
            )
        with pytest.raises(sqlite3.IntegrityError):
            await writer.apply([one], NOW)
        with contextlib.closing(sqlite3.connect(database)) as db, db:
            db.execute("DROP TRIGGER no_sms")
        (written,) = await writer.apply([one], NOW)
    finally:
        writer.close()
    assert written.codes == (0,)


async def test_the_writer_writes_the_json_columns_text(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    """The writer's engine is given json_columns' serializer: the results are its compact text,
    not json.dumps's."""
    await apply(sqlite_engine, BATCH)
    with contextlib.closing(sqlite3.connect(tmp_path / "w.db")) as con:
        texts = [row[0] for row in con.execute("SELECT results FROM emails")]
    written = [text for text in texts if json.loads(text)]
    assert written
    for text in written:
        assert text == json_columns.dumps(json.loads(text)) != json.dumps(json.loads(text))


async def test_the_results_keep_tel_and_code_and_are_read_with_the_code_s_message(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    """Each recipient's message is its code's: not stored, added when read; a row written
    with its messages (before) is read as it was."""
    await apply(sqlite_engine, BATCH)
    with contextlib.closing(sqlite3.connect(tmp_path / "w.db")) as con, con:
        stored = [json.loads(text) for (text,) in con.execute("SELECT results FROM emails")]
        con.execute(
            "UPDATE emails SET results = ? WHERE id = (SELECT min(id) FROM emails)",
            (json.dumps([{"tel": "0601020304", "code": 0, "message": "as written then"}]),),
        )
    assert any(stored) and all(set(r) == {"tel", "code"} for rows in stored for r in rows)
    async with sqlite_engine.connect() as conn:
        items = (await reads.list_emails(conn)).items  # newest first
    read = [r for item in reversed(items[:-1]) for r in item["results"]]
    expected = [{**r, "message": codes.message(r["code"])} for rows in stored[1:] for r in rows]
    assert read == expected
    assert {r["code"] for r in read} >= {0, 12}  # sent and blacklisted: two messages
    assert items[-1]["results"] == [{"tel": "0601020304", "code": 0, "message": "as written then"}]


async def test_the_engine_writes_and_reads_the_json_columns_text(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}")
    table = Table("t", MetaData(), Column("v", JSON))
    value = {"tel": ["0601020304", "é"], "code": 0}
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(insert(table).values(v=value))
        async with engine.connect() as conn:
            assert (await conn.execute(select(table.c.v))).scalar_one() == value
    finally:
        await engine.dispose()
    with contextlib.closing(sqlite3.connect(tmp_path / "j.db")) as con:
        (text,) = con.execute("SELECT v FROM t").fetchone()
    assert text == '{"tel":["0601020304","é"],"code":0}'


@pytest.mark.parametrize("pickled_ahead", [False, True], ids=["as-read", "some-pickled-ahead"])
async def test_the_writer_process_writes_the_rows_the_thread_writes(
    tmp_path: Path, pickled_ahead: bool
) -> None:
    """Whether an email reaches it as read or as `prepare` made it (every other one here)."""
    by_thread, by_process = await two_databases(tmp_path)
    process = open_writer(by_process, RULES, ReplyState.PENDING, own_process=True)
    try:
        assert isinstance(process, ProcessWriter)
        batch = [
            process.prepare(item) if pickled_ahead and n % 2 else item
            for n, item in enumerate(BATCH)
        ]
        assert any(isinstance(item, Pickled) for item in batch) is pickled_ahead
        written = await process.apply(batch, NOW)
    finally:
        process.close()
    assert written == await apply(by_thread, BATCH)
    await same_rows_then_disposed(by_process, by_thread)


async def test_two_batches_at_once_in_the_writer_process_are_applied_in_the_order_given(
    tmp_path: Path,
) -> None:
    """The second batch waits in the child's socket while it applies the first: each is
    answered with its own results, and the rows are those of the two batches one after the
    other in the thread writer."""
    halves = (BATCH[:4], BATCH[4:])
    by_thread, by_process = await two_databases(tmp_path)
    process = open_writer(by_process, RULES, ReplyState.PENDING, own_process=True)
    try:
        assert process.depth == 2
        async with asyncio.timeout(30):  # one channel opened for both: no hang on two
            answers = await asyncio.gather(*(process.apply(half, NOW) for half in halves))
    finally:
        process.close()
    assert list(answers) == [await apply(by_thread, half) for half in halves]
    await same_rows_then_disposed(by_process, by_thread)


async def test_a_writer_process_dying_with_two_batches_fails_both_and_spares_the_retry(
    sqlite_engine: AsyncEngine,
) -> None:
    """Both batches in the child get the error; the first one's retry, started at once (as
    the service retries a failed batch email by email), is not stopped by the second's."""
    emails = one_number_requests(4)
    writer = open_writer(sqlite_engine, RULES, ReplyState.KEPT, own_process=True)
    assert isinstance(writer, ProcessWriter)

    async def applied_or_retried() -> list[Written]:
        try:
            await writer.apply([emails[1]], NOW)
        except ProcessingError:
            return await writer.apply([emails[1]], NOW)
        raise AssertionError("the first batch was applied by a stopped child")

    try:
        await writer.apply([emails[0]], NOW)
        child = writer.pid
        assert child is not None
        os.kill(child, signal.SIGSTOP)
        retried = asyncio.create_task(applied_or_retried())
        second = asyncio.create_task(writer.apply([emails[2]], NOW))
        for _ in range(20):  # both frames written, both waiting for their answer
            await asyncio.sleep(0)
        os.kill(child, signal.SIGKILL)
        with pytest.raises(ProcessingError, match="ended"):
            await second
        (written,) = await retried
        replacement = writer.pid
        assert replacement not in (None, child)
        (after,) = await writer.apply([emails[3]], NOW)
        assert writer.pid == replacement
    finally:
        writer.close()
    assert written.codes == after.codes == (0,)


async def test_a_batch_cancelled_in_the_writer_process_leaves_no_answer_to_the_next(
    sqlite_engine: AsyncEngine,
) -> None:
    """A batch given up while the child applies it (its task cancelled): the child still
    commits it and answers, to nobody; the batch behind it gets its own answer, not that
    one, from the same child."""
    emails = one_number_requests(3)
    writer = open_writer(sqlite_engine, RULES, ReplyState.KEPT, own_process=True)
    assert isinstance(writer, ProcessWriter)
    try:
        await writer.apply([emails[0]], NOW)
        child = writer.pid
        assert child is not None
        os.kill(child, signal.SIGSTOP)
        given_up = asyncio.create_task(writer.apply([emails[1], emails[0]], NOW))
        behind = asyncio.create_task(writer.apply([emails[2]], NOW))
        for _ in range(20):  # both frames written, both waiting for their answer
            await asyncio.sleep(0)
        given_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await given_up
        os.kill(child, signal.SIGCONT)
        async with asyncio.timeout(10):
            (written,) = await behind  # one email: the given-up batch's answer had two
        assert writer.pid == child
    finally:
        writer.close()
    assert written.codes == (0,)


async def test_a_writer_process_applies_no_batch_left_by_a_gateway_that_died(
    sqlite_engine: AsyncEngine,
) -> None:
    """Two batches wait in the child's socket when the gateway's end closes at once, as at
    its kill -9: nobody can answer their clients (who send them again), so neither is
    applied, and the child ends."""
    emails = one_number_requests(3)
    writer = open_writer(sqlite_engine, RULES, ReplyState.KEPT, own_process=True)
    assert isinstance(writer, ProcessWriter)
    await writer.apply([emails[0]], NOW)
    child, channel = writer._process, writer._channel
    assert child is not None and channel is not None
    os.kill(child.pid, signal.SIGSTOP)
    transport = channel.transport
    assert transport is not None
    for email in emails[1:]:
        transport.write(_frame(([email], NOW)))
    assert transport.get_write_buffer_size() == 0  # both in the socket
    transport.abort()  # the gateway's end closed, nothing more said
    writer._process = writer._socket = writer._channel = None  # its end is gone, unclosed
    async with asyncio.timeout(10):
        while transport.get_extra_info("socket").fileno() != -1:
            await asyncio.sleep(0.01)
    os.kill(child.pid, signal.SIGCONT)
    assert await asyncio.to_thread(child.wait, 10) == 0
    assert [row["email_id"] for row in (await stored_rows(sqlite_engine))["emails"]] == ["0"]


async def test_a_batch_failing_in_the_writer_process_is_a_processing_error_and_keeps_nothing(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "w.db")) as db, db:
        db.execute("CREATE TRIGGER no_sms BEFORE INSERT ON sms BEGIN SELECT RAISE(ABORT, 'x'); END")
    writer = open_writer(sqlite_engine, RULES, ReplyState.KEPT, own_process=True)
    try:
        with pytest.raises(ProcessingError, match="IntegrityError"):
            await writer.apply(BATCH, NOW)
    finally:
        writer.close()
    assert (await stored_rows(sqlite_engine))["emails"] == []


async def test_a_writer_process_that_died_is_replaced_for_the_next_batch(
    sqlite_engine: AsyncEngine,
) -> None:
    one = inbound("<keyid>demo</keyid><num>0601020304</num><emailId>1</emailId>")
    two = inbound("<keyid>demo</keyid><num>0601020304</num><emailId>2</emailId>")
    writer = open_writer(sqlite_engine, RULES, ReplyState.KEPT, own_process=True)
    assert isinstance(writer, ProcessWriter)
    try:
        await writer.apply([one], NOW)
        child = writer.pid
        assert child is not None
        os.kill(child, signal.SIGKILL)
        with pytest.raises(ProcessingError, match="ended"):
            await writer.apply([two], NOW)
        (written,) = await writer.apply([two], NOW)
        assert writer.pid not in (None, child)
        replacement = writer._process
    finally:
        writer.close()
    assert written.codes == (0,)
    # Closed, the new child ended on its own (its end of input seen at once), not killed.
    assert replacement is not None and replacement.returncode == 0


async def test_the_writer_process_ends_when_the_writer_is_closed(
    sqlite_engine: AsyncEngine,
) -> None:
    writer = open_writer(sqlite_engine, RULES, ReplyState.KEPT, own_process=True)
    assert isinstance(writer, ProcessWriter)
    child = writer.pid
    assert child is not None
    writer.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)  # already reaped: it ended within close()


def test_the_writer_process_loads_neither_pydantic_nor_the_async_engine() -> None:
    """What the child imports (writer_process.main): the settings' pydantic and SQLAlchemy's
    async side (with its ORM) were ~15 MiB of its RSS for nothing it uses."""
    heavy = (
        "pydantic",
        "pydantic_core",
        "sqlalchemy.ext.asyncio",
        "sqlalchemy.orm",
        "gateway.config",
    )
    code = (
        "import sys, gateway.store.writer_process\n"
        "from gateway.store.sqlite_writer import SqliteWriter\n"
        f"print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout


async def test_a_batch_s_frame_fits_the_writer_process_s_socket_at_once(
    sqlite_engine: AsyncEngine,
) -> None:
    """The gateway's end takes a batch of big requests (~80 KB an email of 500 CSV lines) in
    one send, up to what the kernel allows (Linux reports twice the size it was given)."""
    from gateway.store import writer_process

    allowed = int(Path("/proc/sys/net/core/wmem_max").read_text())
    writer = open_writer(sqlite_engine, RULES, ReplyState.KEPT, own_process=True)
    assert isinstance(writer, ProcessWriter)
    try:
        assert writer._socket is not None
        size = writer._socket.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        assert size >= min(writer_process._SEND_BUFFER, allowed)
    finally:
        writer.close()


@pytest.mark.parametrize("table", [emails, sms, replies], ids=lambda t: t.name)
def test_driver_rows_are_the_rows_sqlalchemy_writes(table: Table, tmp_path: Path) -> None:
    """The same row inserted by SQLAlchemy Core and by the driver is stored alike, value for
    value and type for type (timestamps and JSON as text), every column but the id."""
    row = {column.name: SAMPLE[column.name] for column in table.c if column.name != "id"}
    stored_by_core_and_by_driver(table, row, tmp_path)


def test_the_driver_stores_a_not_report_as_what_it_says_as_sqlalchemy_does(
    tmp_path: Path,
) -> None:
    report = NotReport("7", (("0601020304", 0), ("06", 7)), numbered=True)
    row = {column.name: SAMPLE[column.name] for column in replies.c if column.name != "id"}
    stored = stored_by_core_and_by_driver(replies, {**row, "body": report}, tmp_path)
    at = 2 * [c.name for c in replies.c if c.name != "id"].index("body")
    assert stored[at + 1] == "blob"
    assert json.loads(stored[at]) == [1, "7", True, ["0601020304", "06"], [0, 7]]


def stored_by_core_and_by_driver(
    table: Table, row: dict[str, Any], tmp_path: Path
) -> tuple[Any, ...]:
    """The row inserted by SQLAlchemy Core and by the driver: each column's stored value and
    its SQLite type, alike for both."""
    engine = create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    metadata.create_all(engine)
    driver_insert = DriverInsert(table, engine.dialect)
    with engine.begin() as conn:
        conn.execute(insert(table), [row])
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        driver.execute(driver_insert.sql, driver_insert.values([row])[0])
    columns = [c.name for c in table.c if c.name != "id"]
    select_each = ", ".join(f'"{name}", typeof("{name}")' for name in columns)
    with contextlib.closing(sqlite3.connect(tmp_path / "d.db")) as db:
        by_core, by_driver = db.execute(f"SELECT {select_each} FROM {table.name}").fetchall()
    engine.dispose()
    assert by_core == by_driver
    assert set(driver_insert.columns) == set(columns)
    return tuple(by_core)


def test_grouped_sms_values_are_the_values_of_their_rows() -> None:
    """The SMS of each request given grouped (shared columns once, the rest from each SMS)
    reach the driver as the same tuples as one row per SMS, in the same order."""
    sent = tuple(
        Sms(to=f"060102030{i}", sender="36111", text=f"t{i % 2}", parts=1 + i, encoding="gsm7")
        for i in range(4)
    )
    shared = {
        "email_row": 1,
        "account_id": 1,
        "email_id": "1",
        "created_at": NOW,
        "channel": "mail",
        "state": "sent",
        "due_at": None,
    }
    later = {**shared, "email_row": None, "channel": "http", "state": "scheduled", "due_at": NOW}
    groups = [SmsRows(shared, sent[:3]), SmsRows(later, sent[3:]), SmsRows(shared, sent[1:2])]
    dialect = create_engine("sqlite://").dialect
    insert = DriverInsert(sms, dialect, fields=SMS_FIELDS, with_id=True)
    rows = [*groups[0].rows(7), *groups[1].rows(10), *groups[2].rows(11)]
    assert insert.grouped_values(groups, [7, 10, 11]) == insert.values(rows)
    assert len(rows) == 5 and rows[3]["to"] == "0601020303" and rows[3]["state"] == "scheduled"
    assert [(row["id"], row["group_id"]) for row in rows] == [
        (7, 7), (8, 7), (9, 7), (10, 10), (11, 11)
    ]  # fmt: skip
    assert [groups[0].group(7)["last_id"], groups[2].group(11)["last_id"]] == [9, 11]


SAMPLE: dict[str, Any] = {
    "received_at": NOW,
    "created_at": NOW,
    "group_id": 1,
    "next_attempt_at": None,
    "delivered_at": None,
    "status": "processed",
    "reason": "r",
    "code": None,
    "email_id": "1",
    "account_id": 1,
    "keyid": "demo",
    "sender": "a@example.com",
    "envelope_from": "",
    "client_ip": "127.0.0.1",
    "message_id": "<m@x>",
    "subject": "é",
    "results": [{"tel": "0601020304", "code": 0, "message": "Votre message a bien été envoyé"}],
    "warnings": ["w"],
    "raw": b"\x00raw\xff",
    "email_row": 1,
    "to": "0601020304",
    "text": "Bonjour\r\nSTOP",
    "parts": 1,
    "encoding": "gsm7",
    "tracker": "t",
    "channel": "http",
    "due_at": NOW,
    "kind": "ack",
    "body": "<xml/>",
    "state": "pending",
    "attempts": 0,
    "last_error": "",
    "id": None,
}


# -- what one SQLite batch leaves for the next ------------------------------------------------


async def test_a_sqlite_batch_reads_what_the_last_one_left_unless_another_connection_wrote(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    read_snapshot = account_snapshot.read_snapshot

    def counted(conn: Any, keyid: str, *, lock: bool) -> Any:
        reads.append(keyid)
        return read_snapshot(conn, keyid, lock=lock)

    monkeypatch.setattr(account_snapshot, "read_snapshot", counted)
    one = "<keyid>demo</keyid><num>0601020304</num><emailId>{}</emailId>"
    writer = open_writer(sqlite_engine, RULES, ReplyState.PENDING)
    assert isinstance(writer, SqliteWriter)
    try:
        await writer.apply([inbound(one.format(1))], NOW)
        await writer.apply([inbound(one.format(2)), inbound(one.format(3))], NOW)
        assert reads == ["demo"]  # the second batch took the account (and credit) as left

        # Another connection writes: the next batch reads the account and faults again.
        async with write_transaction(sqlite_engine) as conn:
            await conn.execute(accounts.update().values(credit=1))
            await conn.execute(
                insert(faults).values(code=24, remaining=5, number="0601020307", created_at=NOW)
            )
        written = await writer.apply(
            [
                inbound(one.format(4)),
                inbound(one.format(5)),
                inbound(one.format(6).replace("0601020304", "0601020307")),
            ],
            NOW,
        )
        assert reads == ["demo", "demo"]
        assert [w.codes for w in written] == [(0,), (12,), (24,)]

        # Nothing else wrote: the credit left (0) and the fault's uses left (4) carry over.
        written = await writer.apply(
            [inbound(one.format(7)), inbound(one.format(8).replace("0601020304", "0601020307"))],
            NOW,
        )
        assert reads == ["demo", "demo"]
        assert [w.codes for w in written] == [(12,), (24,)]
    finally:
        writer.close()
    async with sqlite_engine.connect() as conn:
        credit = await conn.execute(select(accounts.c.credit).where(accounts.c.keyid == "demo"))
        remaining = await conn.execute(select(faults.c.remaining).where(faults.c.code == 24))
        assert (credit.scalar_one(), remaining.scalar_one()) == (0, 3)


async def test_the_sqlite_writer_keeps_its_connection_and_no_snapshot_between_batches(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    """One connection from batch to batch, holding nothing between them: another connection's
    checkpoint empties the WAL whole (a snapshot held would keep it, and the WAL would only
    grow). After a failed batch the next one opens a new connection."""
    one = "<keyid>demo</keyid><num>0601020304</num><emailId>{}</emailId>"
    writer = open_writer(sqlite_engine, RULES, ReplyState.KEPT)
    assert isinstance(writer, SqliteWriter)

    def connection(db: Any) -> Any:
        return db._conn

    def checkpoint() -> tuple[int, int, int]:
        with contextlib.closing(sqlite3.connect(tmp_path / "w.db")) as other:
            done: tuple[int, int, int] = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return done

    try:
        await writer.apply([inbound(one.format(1))], NOW)
        first = await writer._transaction(connection)
        assert checkpoint() == (0, 0, 0)  # not busy, nothing left in the WAL
        await writer.apply([inbound(one.format(2))], NOW)
        assert await writer._transaction(connection) is first
        assert checkpoint() == (0, 0, 0)

        with pytest.raises(ProcessingError):
            await writer._transaction(lambda db: (_ for _ in ()).throw(ProcessingError("x")))
        (written,) = await writer.apply([inbound(one.format(3))], NOW)
        assert written.codes == (0,)
        assert await writer._transaction(connection) is not first
        assert checkpoint() == (0, 0, 0)
    finally:
        writer.close()


def test_a_batch_crosses_to_the_writer_process_unchanged() -> None:
    """The frame's pickler (dataclasses by their fields, found in its own dispatch table)
    gives back equal objects; types it has no reducer of pickle as the default pickler does."""
    import pickle
    import re

    from gateway.core.model import Channel
    from gateway.store import writer_process

    assert BATCH[4].request is not None
    tracked = dataclasses.replace(
        BATCH[4].request,
        recipients=(Recipient("0601020304", "a", "t-1"), Recipient("0601020305", "b")),
        channel=Channel.HTTP,
    )
    call = HttpCall(request=tracked, client_ip="127.0.0.1")
    batch = [*BATCH, call]
    payload = (batch, NOW, Channel.HTTP, Channel, re.compile("x+", re.I), frozenset({1}))
    frame = writer_process._frame(payload)
    assert int.from_bytes(frame[:8], "little") == len(frame) - 8
    assert pickle.loads(frame[8:]) == payload


async def test_the_sqlite_writer_keeps_a_larger_page_cache_and_wal_than_the_readers(
    sqlite_engine: AsyncEngine,
) -> None:
    writer = open_writer(sqlite_engine, RULES, ReplyState.PENDING)
    assert isinstance(writer, SqliteWriter)

    def pragmas(db: Any) -> tuple[int, int]:
        driver = db._conn.connection.driver_connection
        return tuple(  # type: ignore[return-value]
            int(driver.execute(f"PRAGMA {name}").fetchone()[0])
            for name in ("cache_size", "wal_autocheckpoint")
        )

    try:
        size, checkpoint = await writer._transaction(pragmas)
    finally:
        writer.close()
    async with sqlite_engine.connect() as conn:
        readers = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()
        readers_checkpoint = (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one()
    assert size == -16 * 1024  # KiB (negative: a size, not pages)
    assert readers == -2000  # SQLite's default, 2 MiB: the readers are many
    assert checkpoint == 10_000  # pages: the writer's commits copy the WAL back less often
    assert readers_checkpoint == 1000  # SQLite's default
