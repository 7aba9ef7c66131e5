"""tables.ReplyBody: a Not report stored as what it says on SQLite, as text on PostgreSQL, read
back as the same XML either way; text stored as it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core import replies
from gateway.core.replies import NotReport
from gateway.store.engine import make_engine, write_transaction
from gateway.store.tables import ReplyBody

CAMPAIGN = NotReport(
    "1001001", tuple((f"0612{n:06d}", 0 if n % 7 else 12) for n in range(1, 501)), numbered=True
)
BODIES: dict[int, Any] = {
    1: CAMPAIGN,
    2: NotReport("9", (("0601020304", 0), ("<06>&é", 7)), numbered=False),  # escaped when read
    3: NotReport(None, (("", 3),), numbered=False),  # no emailId: "?"
    4: replies.ack("42", 0),  # text: stored as it is
    5: NotReport("8", (("06 \udcff", 7),), numbered=True),  # an undecodable byte in a tel
}
table = Table("bodies", MetaData(), Column("id", Integer, primary_key=True), Column("b", ReplyBody))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
    yield engine
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.drop_all)
    await engine.dispose()


def text_of(body: Any) -> str:
    return body.body if isinstance(body, NotReport) else str(body)


async def test_a_not_report_is_read_back_as_the_xml_it_renders(engine: AsyncEngine) -> None:
    on_sqlite = engine.dialect.name == "sqlite"
    # PostgreSQL text holds no surrogate, however stored.
    bodies = BODIES if on_sqlite else {k: v for k, v in BODIES.items() if k != 5}
    async with write_transaction(engine) as conn:
        await conn.execute(insert(table), [{"id": k, "b": v} for k, v in bodies.items()])
    typeof = "typeof(b)" if on_sqlite else "pg_typeof(b)::text"
    async with engine.connect() as conn:
        read = dict((await conn.execute(select(table.c.id, table.c.b))).all())
        stored = await conn.execute(
            select(table.c.id, literal_column(typeof), literal_column("length(b)"))
        )
        kinds = {k: (kind, size) for k, kind, size in stored}
    assert read == {k: text_of(v) for k, v in bodies.items()}
    assert "<tel>&lt;06&gt;&amp;é</tel>" in read[2] and "<emailId>?</emailId>" in read[3]
    if on_sqlite:
        assert {k for k, (kind, _) in kinds.items() if kind == "blob"} == {1, 2, 3, 5}
        assert kinds[1][1] < len(CAMPAIGN.body) // 8  # what it says: 7 of 63 KB
        assert kinds[4] == ("text", len(BODIES[4]))
    else:
        assert {kind for kind, _ in kinds.values()} == {"text"}
        assert kinds[1][1] == len(CAMPAIGN.body)


async def test_a_body_stored_as_text_before_is_read_as_it_is(engine: AsyncEngine) -> None:
    long = CAMPAIGN.body
    async with write_transaction(engine) as conn:
        await conn.execute(insert(table), [{"id": 1, "b": "short"}, {"id": 2, "b": long}])
    async with engine.connect() as conn:
        read = dict((await conn.execute(select(table.c.id, table.c.b))).all())
    assert read == {1: "short", 2: long}


async def test_a_body_stored_in_a_form_not_known_is_an_error_not_a_guess(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(insert(table).values(id=1, b=b'[2, "1", true, [], []]'))
        async with engine.connect() as conn:
            with pytest.raises(ValueError, match=r"unknown form \(2\)"):
                (await conn.execute(select(table.c.b))).all()
    finally:
        await engine.dispose()
