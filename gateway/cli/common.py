"""What the commands share: exit statuses, the options of every command, the database's user
errors in one line, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.errors import ConfigError, NotMigratedError, StorageError

EXIT_USAGE = 2
EXIT_FAILURE = 1

Formatter = argparse.RawDescriptionHelpFormatter


def add_common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--config and -v, accepted before the command (`top`) and after it. After it they
    default to nothing, so that a subcommand does not reset what was given before it."""
    unset: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="a TOML settings file (`mail2sms config` prints every key); "
        "MAIL2SMS_<SECTION>__<KEY> environment variables override it",
        **unset,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every email", **unset)


def command(
    commands: Any, name: str, summary: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary, epilog=epilog, formatter_class=Formatter
    )
    add_common_options(parser, top=False)
    return parser


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


@contextmanager
def opening_database(url: str) -> Iterator[None]:
    """Building the engine and preparing the database: whatever fails in here (the SQLite
    file's folder, the URL, the file, the server) is the database's, said in one line."""
    try:
        yield
    except (ConfigError, NotMigratedError):
        raise  # they say what to do already
    except Exception as exc:
        raise unusable_database(url, exc) from exc


def unusable_database(url: str, error: Exception) -> StorageError:
    """One line: the URL (password hidden), the cause without the driver's traceback or
    SQLAlchemy's hints, and where the setting is changed."""
    cause = error.__cause__ if isinstance(error, StorageError) and error.__cause__ else error
    if isinstance(cause, OSError) and cause.filename is not None:
        why = f"cannot create the folder {cause.filename}: {cause.strerror}"
    else:
        text = str(getattr(cause, "orig", None) or cause).strip()
        why = text.splitlines()[0] if text else type(cause).__name__
    return StorageError(
        f"cannot use database.url {hide_password(url)} ({why}); set database.url to a usable "
        "database (in the --config file, MAIL2SMS_DATABASE__URL or serve --db)"
    )


def print_database(url: str) -> None:
    """One line on stderr (stdout stays the command's): the database the command acts on."""
    print(f"mail2sms: database {database_shown(url)}", file=sys.stderr)


def database_shown(url: str) -> str:
    """An SQLite file by its absolute path, any other database by its URL without password."""
    from gateway.store.engine import sqlite_path

    path = sqlite_path(url)
    return f"{os.path.abspath(path)} (SQLite)" if path is not None else hide_password(url)


def hide_password(url: str) -> str:
    """The URL with its password, if any, as ***."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def ignore_aiosqlite_late_answers() -> None:
    """When aiosqlite fails to open a file, it answers its own clean-up after `asyncio.run` has
    closed the loop, and its worker thread dies printing a traceback for "Event loop is closed"
    (omnilib/aiosqlite#241, fix pending in #389). Nothing is lost then: that one is not printed,
    so that the user error stays one line."""
    default = threading.excepthook
    if default is not threading.__excepthook__:
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        late = (
            args.exc_type is RuntimeError
            and str(args.exc_value) == "Event loop is closed"
            and args.thread is not None
            and args.thread.name.endswith("(_connection_worker_thread)")
        )
        if not late:
            default(args)

    threading.excepthook = hook
