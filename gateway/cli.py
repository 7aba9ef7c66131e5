"""The `mail2sms` command line: serve the gateway, migrate its database."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.config import Settings, load_settings
from gateway.errors import ConfigError, GatewayError, StorageError

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mail2sms",
        description="An emulator of the iSendPro mail 2 SMS gateway: email a request in, "
        "see the SMS and the Ack/Not replies out.",
    )
    parser.add_argument("--version", action="version", version=f"mail2sms {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="a TOML settings file (see config.example.toml); MAIL2SMS_<SECTION>__<KEY> "
        "environment variables override it",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every email")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "serve",
        help="run the gateway (SMTP + HTTP); SQLite is migrated and the demo account seeded",
    )
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_commands.add_parser("upgrade", help="apply the Alembic migrations up to the current schema")
    db_commands.add_parser("current", help="print the schema revision of the database")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(args.config)
        if args.command == "serve":
            return asyncio.run(_serve(settings))
        if args.command == "db":
            return asyncio.run(_db(settings, args.db_command))
    except ConfigError as exc:
        print(f"mail2sms: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as exc:
        print(f"mail2sms: {exc}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"mail2sms: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return EXIT_USAGE


async def _serve(settings: Settings) -> int:
    from gateway.app import Gateway

    gateway = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await gateway.start()
        print(
            f"mail2sms: SMTP on {settings.smtp.host}:{gateway.smtp_port} "
            f"(send to {settings.smtp.gateway_addresses[0]}), "
            f"web page and API on http://{settings.http.host}:{gateway.http_port}/",
            flush=True,
        )
        await stop.wait()
    finally:
        await gateway.stop()
    return 0


async def _db(settings: Settings, action: str) -> int:
    from gateway.store import migrate
    from gateway.store.engine import make_engine

    engine = make_engine(settings.database.url)
    try:
        if action == "upgrade":
            await migrate.upgrade(engine)
            print(f"mail2sms: database at revision {migrate.head_revision()}")
        else:
            print(await migrate.current_revision(engine) or "(empty database)")
    except Exception as exc:
        raise StorageError(f"database.url: {exc}") from exc
    finally:
        await engine.dispose()
    return 0
