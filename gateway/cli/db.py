"""`mail2sms db upgrade|current`: the database schema (Alembic migrations)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.cli.common import command, opening_database, print_database
from gateway.config import Settings


def add_parser(commands: Any) -> None:
    db = command(
        commands,
        "db",
        "the database schema (Alembic migrations)",
        "examples:\n  mail2sms --config staging.toml db upgrade\n  mail2sms db current",
    )
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    command(actions, "upgrade", "apply the migrations up to the current schema")
    command(actions, "current", "print the schema revision of the database")


def run(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_db(settings, args.db_command))


async def _db(settings: Settings, action: str) -> int:
    from gateway.store import migrate
    from gateway.store.engine import make_engine

    url = settings.database.url
    with opening_database(url):
        engine = make_engine(url)
    try:
        with opening_database(url):
            if action == "upgrade":
                await migrate.upgrade(engine)
                said = f"mail2sms: database at revision {migrate.head_revision()}"
            else:
                said = await migrate.current_revision(engine) or "(empty database)"
    finally:
        await engine.dispose()
    print_database(url)
    print(said)
    return 0
