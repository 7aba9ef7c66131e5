"""migrations/ builds exactly the schema of gateway/store/tables.py, on SQLite and PostgreSQL:
Alembic's autogenerate comparison of a database upgraded to head finds no difference."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, DefaultClause, Integer, MetaData, text

from gateway.store import migrate
from gateway.store.engine import make_engine
from gateway.store.tables import built_on, metadata


async def _differences(url: str, target: MetaData) -> list[Any]:
    """What `alembic revision --autogenerate` would write after `mail2sms db upgrade`."""
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            return await connection.run_sync(_compare, target)
    finally:
        await engine.dispose()


def _compare(connection: Connection, target: MetaData) -> list[Any]:
    options = {
        "compare_type": True,
        "compare_server_default": _same_default,
        "include_object": built_on(connection.dialect.name),
    }
    context = MigrationContext.configure(connection, opts=options)
    differences: list[Any] = compare_metadata(context, target)
    return differences


def _same_default(
    context: MigrationContext,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic's own comparison of server defaults (None), except that it misreads SQLite's
    empty-string default (reflected as ('') and left quoted): that one is the same as ""."""
    if inspected_default in ("''", "('')") and rendered_metadata_default == "":
        return False
    return None


async def test_the_migrations_build_the_schema_of_tables_py(database_url: str) -> None:
    assert await _differences(database_url, metadata) == []


def _copy() -> MetaData:
    copy = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        copied = table.to_metadata(copy)
        # to_metadata leaves out an index's ddl_if (tables.built_on reads it).
        conditions = {index.name: index._ddl_if for index in table.indexes}
        for index in copied.indexes:
            index._ddl_if = conditions[index.name]
    return copy


async def test_a_column_missing_from_the_migrations_is_found(database_url: str) -> None:
    changed = _copy()
    changed.tables["sms"].append_column(Column("extra", Integer, nullable=True))
    (difference,) = await _differences(database_url, changed)
    assert difference[0] == "add_column"
    assert (difference[2], difference[3].name) == ("sms", "extra")


async def test_a_server_default_unlike_the_migrations_is_found(database_url: str) -> None:
    changed = _copy()
    changed.tables["accounts"].c.company.server_default = DefaultClause("Acme")
    ((difference,),) = await _differences(database_url, changed)
    assert difference[0] == "modify_default"
    assert (difference[2], difference[3]) == ("accounts", "company")


async def test_the_counts_revision_counts_the_sms_already_stored(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrate.upgrade(engine)
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade_to, "0002")
            await connection.execute(
                text(
                    "INSERT INTO accounts (keyid, login, password, domains, senders, allowed_ips,"
                    " blacklist, created_at) VALUES ('a', 'a', 'a', '[]', '[]', '[]', '[]', "
                    "CURRENT_TIMESTAMP)"
                )
            )
            for channel in ("mail", "mail", "http"):
                await connection.execute(
                    text(
                        'INSERT INTO sms (account_id, "to", sender, text, parts, encoding, '
                        "created_at, channel) SELECT id, '0601020304', 's', 't', 1, 'gsm7', "
                        "CURRENT_TIMESTAMP, :channel FROM accounts"
                    ),
                    {"channel": channel},
                )
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            counted = await connection.execute(
                text("SELECT channel, total FROM sms_counts ORDER BY channel")
            )
            assert counted.all() == [("http", 1), ("mail", 2)]
    finally:
        await engine.dispose()


def _downgrade_to(connection: Connection, revision: str) -> None:
    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)
