"""`mail2sms serve`: run the gateway until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway import runtime
from gateway.cli.common import command, database_shown, opening_database, unusable_database
from gateway.config import DatabaseSettings, Settings
from gateway.errors import ConfigError, NotMigratedError, StorageError

if TYPE_CHECKING:
    from gateway.app import Gateway

SERVE_EPILOG = """\
examples:
  mail2sms serve
  mail2sms serve --smtp-port 2526 --http-port 8026 --db other.db
  MAIL2SMS_SMTP__PORT=2526 mail2sms serve

--smtp-port, --http-port and --db override smtp.port, http.port and database.url for this run."""


def add_parser(commands: Any) -> None:
    serve = command(
        commands,
        "serve",
        "run the gateway (SMTP + HTTP); SQLite is migrated and the settings' accounts seeded",
        SERVE_EPILOG,
    )
    serve.add_argument("--smtp-port", type=_port, metavar="N", help="smtp.port (0: any free)")
    serve.add_argument("--http-port", type=_port, metavar="N", help="http.port (0: any free)")
    serve.add_argument(
        "--db",
        metavar="PATH|URL",
        help="database.url: an SQLite file, or a sqlite+aiosqlite:// or postgresql+asyncpg:// URL",
    )


def _port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"a port from 0 to 65535 (got {value!r})")
    return int(value)


def run(settings: Settings, args: argparse.Namespace) -> int:
    settings = _with_options(settings, args)
    with asyncio.Runner(loop_factory=runtime.loop_factory(settings.runtime.event_loop)) as runner:
        return runner.run(_serve(settings))


def _with_options(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings with this run's --smtp-port, --http-port and --db, which win over the file
    and the environment."""
    changes: dict[str, Any] = {}
    if args.smtp_port is not None:
        changes["smtp"] = settings.smtp.model_copy(update={"port": args.smtp_port})
    if args.http_port is not None:
        changes["http"] = settings.http.model_copy(update={"port": args.http_port})
    if args.db is not None:
        url = args.db if "://" in args.db else f"sqlite+aiosqlite:///{args.db}"
        try:
            changes["database"] = DatabaseSettings(url=url)
        except ValidationError as exc:
            message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"--db: {message} (got {args.db!r})") from None
    return settings.model_copy(update=changes)


async def _serve(settings: Settings) -> int:
    from gateway.app import Gateway

    url = settings.database.url
    with opening_database(url):
        gateway = Gateway(settings, writer_process=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await _start(gateway, url)
        runtime.settle()
        print(*listening(settings, gateway.smtp_port, gateway.http_port), sep="\n", flush=True)
        await stop.wait()
    finally:
        await gateway.stop()
    return 0


def listening(settings: Settings, smtp_port: int, http_port: int) -> list[str]:
    """What serves where, one line each: SMTP, HTTP, the database; and the event loop when
    it is not asyncio's own."""
    smtp = settings.smtp
    if not smtp.starttls:
        tls = "STARTTLS off"
    elif smtp.tls_cert:
        tls = f"STARTTLS on with {os.path.abspath(smtp.tls_cert)}"
    else:
        tls = "STARTTLS on with a self-signed certificate"
    logins = {"off": "", "any": "any login", "accounts": "the accounts' logins"}[smtp.auth]
    auth = f"AUTH {'required' if smtp.auth_required else 'on'}: {logins}" if logins else "AUTH off"
    web = f"http://{settings.http.host}:{http_port}"
    lines = [
        f"mail2sms: SMTP on {smtp.host}:{smtp_port} (send to {' or '.join(smtp.gateway_addresses)};"
        f" {tls}; {auth})",
        f"mail2sms: web page and API on {web}/ (the provider's HTTP API: {web}/cgi-bin)",
        f"mail2sms: database {database_shown(settings.database.url)}",
    ]
    if settings.runtime.event_loop != "asyncio":
        loop = type(asyncio.get_running_loop())
        lines.append(f"mail2sms: event loop {loop.__module__}.{loop.__qualname__}")
    return lines


async def _start(gateway: Gateway, url: str) -> None:
    """Start it; a database it cannot prepare is said in one line, like the ports already are."""
    try:
        await gateway.start()
    except NotMigratedError:
        raise
    except StorageError as exc:
        raise unusable_database(url, exc) from exc
