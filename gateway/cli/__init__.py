"""The `mail2sms` command line: the parser and `main`, which runs one command of the group."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gateway import __version__
from gateway.cli import accounts, config, db, send, serve
from gateway.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    Formatter,
    add_common_options,
    ignore_aiosqlite_late_answers,
)
from gateway.config import Settings, load_settings
from gateway.errors import ConfigError, GatewayError


class Command(Protocol):
    """A command module: it declares its parser, then runs with the settings."""

    def add_parser(self, commands: Any) -> None: ...

    def run(self, settings: Settings, args: argparse.Namespace) -> int: ...


COMMANDS: Mapping[str, Command] = {
    "serve": serve,
    "db": db,
    "accounts": accounts,
    "send": send,
    "config": config,
}

MAIN_EPILOG = """\
examples:
  mail2sms serve                                  # SMTP 127.0.0.1:2525, web/API :8025
  mail2sms --config staging.toml db upgrade       # migrate PostgreSQL before `serve`
  mail2sms accounts create --company Acme --domain acme.test --credit 500
  mail2sms send --to 0601020304 --text "Bonjour" --wait
  mail2sms --config staging.toml config           # the settings in effect, every key

Settings come from --config and MAIL2SMS_<SECTION>__<KEY> variables; `mail2sms config`
prints them all, with their defaults."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mail2sms",
        description="An emulator of the iSendPro mail 2 SMS gateway: email a request in,\n"
        "see the SMS and the Ack/Not replies out.",
        epilog=MAIN_EPILOG,
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"mail2sms {__version__}")
    add_common_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # aiosmtpd logs every SMTP command at INFO: a few hundred bytes and ~5 % CPU per email.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        # Alembic names its plugins, its dialect and each migration at INFO at every start:
        # no news (`serve` prints its database; `db current` tells the revision).
        logging.getLogger("alembic").setLevel(logging.WARNING)
    ignore_aiosqlite_late_answers()
    try:
        settings = load_settings(args.config)
        return COMMANDS[args.command].run(settings, args)
    except ConfigError as exc:
        return _failed(str(exc), EXIT_USAGE)
    except GatewayError as exc:
        return _failed(str(exc), EXIT_FAILURE)


def _failed(message: str, status: int) -> int:
    """A user error: one line on stderr, never a traceback (SPEC §13)."""
    print(f"mail2sms: {message}", file=sys.stderr)
    return status
