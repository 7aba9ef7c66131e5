"""The `mail2sms` command line: serve, migrate, manage accounts, send a request email."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import smtplib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import __version__
from gateway.client import request_body, request_email, submit
from gateway.config import Settings, load_settings
from gateway.errors import ConfigError, GatewayError, StorageError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from gateway.app import Gateway

EXIT_USAGE = 2
EXIT_FAILURE = 1
MAX_WAIT = 30.0  # the API answers a long-poll after at most this many seconds

_Formatter = argparse.RawDescriptionHelpFormatter


# The parser ---------------------------------------------------------------------------------

MAIN_EPILOG = """\
examples:
  mail2sms serve                                  # SMTP 127.0.0.1:2525, web/API :8025
  mail2sms --config staging.toml db upgrade       # migrate PostgreSQL before `serve`
  mail2sms accounts create --company Acme --domain acme.test --credit 500
  mail2sms send --to 0601020304 --text "Bonjour" --wait

Settings come from --config and MAIL2SMS_<SECTION>__<KEY> variables (config.example.toml)."""

ACCOUNTS_EPILOG = """\
examples:
  mail2sms accounts create --company Acme --domain acme.test --sender ACME --credit 500
  mail2sms accounts list
  mail2sms accounts set acme --add-credit 100 --quiet-hours-lifted

The commands use the database of the settings directly (SQLite is migrated on first use;
another database must be at the current schema: `mail2sms db upgrade`). Accounts of the
settings' [[accounts]] appear once `mail2sms serve` has started on that database."""

CREATE_EPILOG = """\
examples:
  mail2sms accounts create --company Acme --domain acme.test --credit 500
  mail2sms accounts create --keyid acme --login acme --domain acme.test --domain acme.fr \\
      --sender ACME --nostop-allowed --allowed-ip 10.0.0.0/8 --json

login, password and keyid are generated when not given; the password is printed once here
(and by `mail2sms accounts list --json`)."""

LIST_EPILOG = """\
examples:
  mail2sms accounts list
  mail2sms accounts list --json | jq '.items[] | {keyid, credit}'"""

SET_EPILOG = """\
examples:
  mail2sms accounts set acme --credit 500
  mail2sms accounts set acme --add-credit 100 --add-sender PROMO --no-quiet-hours-lifted
  mail2sms accounts set acme --add-blacklist 0601020304 --no-allowed-ips

A list option (--domain, --sender, --allowed-ip, --blacklist) replaces the whole list;
--add-… and --remove-… change one item; --no-… empties it (--no-allowed-ips: any IP).
The settings' [[accounts]] are set again from the settings (all but credit) at each
`mail2sms serve` start: change those in the settings file."""

SEND_EPILOG = """\
examples:
  mail2sms send --to 0601020304 --text "Bonjour" --sender MaSociete --wait
  mail2sms send --to 0601020304 --to 0701020304 --text $'Line one\\nLine two'
  mail2sms send --csv mobiles.csv message.csv --ack ack@example.com
  mail2sms send --to 0699000021 --text "fails with code 21" --wait
  mail2sms send --to 0601020304 --text "Bonjour" --print > request.eml

Line breaks in --text are written Ö, as the provider requires (a literal Ö becomes a line
break too). With --wait and neither --ack nor --not, both replies are asked for at the
--from address; the gateway keeps them visible in its API even when it relays them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mail2sms",
        description="An emulator of the iSendPro mail 2 SMS gateway: email a request in,\n"
        "see the SMS and the Ack/Not replies out.",
        epilog=MAIN_EPILOG,
        formatter_class=_Formatter,
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
    _command(
        commands,
        "serve",
        "run the gateway (SMTP + HTTP); SQLite is migrated and the settings' accounts seeded",
        "examples:\n  mail2sms serve\n  MAIL2SMS_SMTP__PORT=2526 mail2sms serve",
    )
    db = _command(
        commands,
        "db",
        "the database schema (Alembic migrations)",
        "examples:\n  mail2sms --config staging.toml db upgrade\n  mail2sms db current",
    )
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    _command(db_commands, "upgrade", "apply the migrations up to the current schema")
    _command(db_commands, "current", "print the schema revision of the database")
    _add_accounts(commands)
    _add_send(commands)
    return parser


def _command(
    commands: Any, name: str, summary: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary, epilog=epilog, formatter_class=_Formatter
    )
    return parser


# (field, option, metavar, help) of the account fields given as one text value.
TEXT_FIELDS = (
    ("login", "--login", "LOGIN", "the account's login (generated when absent at creation)"),
    ("password", "--password", "PASSWORD", "its password (generated when absent at creation)"),
    ("company", "--company", "NAME", "company name (raison sociale)"),
    ("contact", "--contact", "NAME", "contact name"),
    ("phone", "--phone", "PHONE", "contact phone"),
    ("email", "--email", "ADDRESS", "contact email"),
)
# (field, option, help) of the yes/no fields; each also has its --no-… form.
FLAG_FIELDS = (
    ("nostop_allowed", "--nostop-allowed", "<nostop>1</nostop> may remove the STOP mention"),
    ("quiet_hours_lifted", "--quiet-hours-lifted", "no quiet hours (code 24) for this account"),
    ("international_allowed", "--international-allowed", "foreign numbers are allowed"),
)
# (field, option, metavar, help) of the list fields.
LIST_FIELDS = (
    ("domains", "--domain", "DOMAIN", "an authorised sender domain (From: and envelope)"),
    ("senders", "--sender", "SENDER", "an approved sender id (emetteur)"),
    ("allowed_ips", "--allowed-ip", "IP", "a client IP or network allowed (none: any IP)"),
    ("blacklist", "--blacklist", "NUMBER", "a number that gets code 11"),
)
OPTION_OF: dict[str, str] = {
    "keyid": "--keyid",
    "credit": "--credit",
    "rate_limit": "--rate-limit",
    **{field: option for field, option, *_ in (*TEXT_FIELDS, *FLAG_FIELDS, *LIST_FIELDS)},
}


def _add_accounts(commands: Any) -> None:
    accounts = _command(commands, "accounts", "create, list and change accounts", ACCOUNTS_EPILOG)
    actions = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)

    create = _command(actions, "create", "create an account and print it", CREATE_EPILOG)
    create.add_argument("--keyid", help="the request's <keyid> (generated when absent)")
    _add_account_options(create, replace_help="repeat for several")
    create.add_argument("--json", action="store_true", help="print the account as JSON")

    listing = _command(actions, "list", "print every account (newest first)", LIST_EPILOG)
    listing.add_argument("--json", action="store_true", help="print {items, total} as JSON")

    change = _command(actions, "set", "change some fields of an account", SET_EPILOG)
    change.add_argument("keyid", metavar="KEYID", help="the account to change")
    _add_account_options(change, replace_help="replaces the list; repeat for several")
    change.add_argument(
        "--add-credit", type=int, metavar="N", help="add N to the credit (negative: take away)"
    )
    for field, option, metavar, _ in LIST_FIELDS:
        name = option.removeprefix("--")
        change.add_argument(
            f"--add-{name}",
            action="append",
            dest=f"add_{field}",
            metavar=metavar,
            help=f"add one to {field}",
        )
        change.add_argument(
            f"--remove-{name}",
            action="append",
            dest=f"remove_{field}",
            metavar=metavar,
            help=f"remove one from {field}",
        )
        change.add_argument(
            f"--no-{field.replace('_', '-')}",
            action="store_true",
            dest=f"clear_{field}",
            help=f"empty {field}",
        )
    change.add_argument("--json", action="store_true", help="print the account as JSON")


def _add_account_options(parser: argparse.ArgumentParser, replace_help: str) -> None:
    for field, option, metavar, text in TEXT_FIELDS:
        parser.add_argument(option, dest=field, metavar=metavar, help=text)
    parser.add_argument(
        "--credit", type=_natural("--credit"), metavar="N", help="credit, in SMS parts"
    )
    parser.add_argument(
        "--rate-limit",
        dest="rate_limit",
        type=_natural("--rate-limit"),
        metavar="N",
        help="SMS parts per second, over it code 29 (0: unlimited)",
    )
    for field, option, text in FLAG_FIELDS:
        parser.add_argument(
            option, dest=field, action=argparse.BooleanOptionalAction, default=None, help=text
        )
    for field, option, metavar, text in LIST_FIELDS:
        parser.add_argument(
            option, dest=field, action="append", metavar=metavar, help=f"{text}; {replace_help}"
        )


def _natural(option: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = -1
        if number < 0:
            raise argparse.ArgumentTypeError(f"an integer ≥ 0 (got {value!r})")
        return number

    parse.__name__ = option
    return parse


def _add_send(commands: Any) -> None:
    send = _command(
        commands, "send", "build a request email and send it to a running gateway", SEND_EPILOG
    )
    where = send.add_argument_group("where")
    where.add_argument(
        "--host", default="127.0.0.1", help="the gateway's SMTP host (default: %(default)s)"
    )
    where.add_argument(
        "--port", type=int, help="its SMTP port (default: smtp.port of the settings)"
    )
    where.add_argument(
        "--api",
        metavar="URL",
        help="its HTTP API for --wait (default: http://127.0.0.1:<http.port of the settings>)",
    )
    request = send.add_argument_group("the request")
    request.add_argument("--keyid", help="the account (default: the first account of the settings)")
    request.add_argument(
        "--from",
        dest="sender_address",
        metavar="ADDRESS",
        help="From: and envelope sender (default: app@<the account's first domain>)",
    )
    request.add_argument(
        "--to",
        action="append",
        metavar="NUMBER",
        help="a recipient: once gives <num>, several give <num1>…<numN>",
    )
    request.add_argument("--text", help="the message (<sms>); line breaks become Ö")
    request.add_argument(
        "--csv",
        nargs=2,
        metavar=("MOBILES", "MESSAGE"),
        help="attach these files as mobiles.csv and message.csv instead of --to/--text",
    )
    request.add_argument("--sender", dest="emetteur", metavar="SENDER", help="<emetteur>")
    request.add_argument("--tracker", help="<tracker>, stored on every SMS")
    request.add_argument("--smslong", metavar="N", help="<smslong>: the most parts allowed")
    request.add_argument(
        "--email-id", metavar="ID", help="<emailId> (default: a fresh number from the time)"
    )
    request.add_argument("--ack", metavar="ADDRESS", help="<emailAck>: where the Ack goes")
    request.add_argument("--not", dest="not_", metavar="ADDRESS", help="<emailNot>: the Not")
    request.add_argument("--nostop", action="store_true", help="<nostop>1</nostop>")
    then = send.add_argument_group("then")
    then.add_argument(
        "--wait", action="store_true", help="wait for the Ack and the Not and print their XML"
    )
    then.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long --wait waits for each reply (default: %(default)s)",
    )
    then.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the email instead of sending it",
    )


# Running ------------------------------------------------------------------------------------


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
    try:
        settings = load_settings(args.config)
        if args.command == "serve":
            return asyncio.run(_serve(settings))
        if args.command == "db":
            return asyncio.run(_db(settings, args.db_command))
        if args.command == "accounts":
            return asyncio.run(_accounts(settings, args))
        if args.command == "send":
            return _send(settings, args)
    except ConfigError as exc:
        print(f"mail2sms: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GatewayError as exc:
        print(f"mail2sms: {exc}", file=sys.stderr)
        return EXIT_FAILURE
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


# Accounts -----------------------------------------------------------------------------------


async def _accounts(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.app import Gateway

    # serve's own preparation (SQLite migrated, any other database checked at head), without
    # seeding the settings' accounts: `serve` owns those, the CLI must not undo its changes.
    gateway = Gateway(settings.model_copy(update={"accounts": ()}))
    try:
        await gateway.prepare_database()
        if args.accounts_command == "list":
            return await _list_accounts(gateway, args)
        if args.accounts_command == "create":
            return await _create_account(gateway, args)
        return await _set_account(gateway, settings, args)
    finally:
        await gateway.stop()


async def _list_accounts(gateway: Gateway, args: argparse.Namespace) -> int:
    from gateway.store import accounts

    async with gateway.engine.connect() as conn:
        items = await accounts.list_all(conn)
    if args.json:
        _print_json({"items": items, "total": len(items)})
        return 0
    if not items:
        print("no account yet; `mail2sms accounts create --help` shows how to make one")
        return 0
    rows = [("KEYID", "LOGIN", "COMPANY", "DOMAINS", "CREDIT", "FLAGS")]
    for item in items:
        flags = [option.removeprefix("--") for field, option, _ in FLAG_FIELDS if item[field]]
        rows.append(
            (
                item["keyid"],
                item["login"],
                item["company"] or "-",
                ",".join(item["domains"]) or "-",
                str(item["credit"]),
                ",".join(flags) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _given_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The account fields given on the command line, by their settings names."""
    names = ["credit", "rate_limit"]
    names += [field for field, *_ in (*TEXT_FIELDS, *FLAG_FIELDS, *LIST_FIELDS)]
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


async def _create_account(gateway: Gateway, args: argparse.Namespace) -> int:
    from pydantic import ValidationError
    from sqlalchemy.exc import IntegrityError

    from gateway.store import accounts
    from gateway.store.engine import write_transaction

    fields = _given_fields(args)
    if args.keyid is not None:
        fields["keyid"] = args.keyid
    try:
        async with write_transaction(gateway.engine) as conn:
            account = await accounts.create(conn, fields, gateway.clock.now())
    except ValidationError as exc:
        raise _invalid_field(exc) from None
    except IntegrityError:
        raise await _conflict(gateway, fields) from None
    _print_account(account, as_json=args.json)
    return 0


async def _set_account(gateway: Gateway, settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import ValidationError
    from sqlalchemy.exc import IntegrityError

    from gateway.store import accounts
    from gateway.store.engine import write_transaction

    keyid: str = args.keyid
    changes = _given_fields(args)
    edits = _list_edits(args, changes)
    if args.credit is not None and args.add_credit is not None:
        raise ConfigError("--credit and --add-credit: give one of them, not both")
    if not changes and not edits and args.add_credit is None:
        raise ConfigError(
            "nothing to change: give at least one option (`mail2sms accounts set --help`)"
        )
    try:
        async with write_transaction(gateway.engine) as conn:
            # Lock the row (PostgreSQL) so that a concurrent debit is not lost in between.
            locked = await accounts.snapshot(conn, keyid, lock=True)
            current = await accounts.get(conn, keyid)
            if locked is None or current is None:
                raise GatewayError(
                    f"no account with keyid {keyid!r}; `mail2sms accounts list` shows them"
                )
            if args.add_credit is not None:
                changes["credit"] = current["credit"] + args.add_credit
                if changes["credit"] < 0:
                    raise GatewayError(
                        f"--add-credit: account {keyid!r} has {current['credit']} credits; "
                        f"taking {-args.add_credit} would leave fewer than 0"
                    )
            for field, edit in edits.items():
                changes[field] = edit(list(current[field]))
            account = await accounts.patch(conn, keyid, changes)
            assert account is not None
    except ValidationError as exc:
        raise _invalid_field(exc) from None
    except IntegrityError:
        raise GatewayError(
            f"--login: {changes.get('login')!r} is taken by another account; choose another"
        ) from None
    configured = {a.keyid for a in settings.accounts}
    if keyid in configured and set(changes) - {"credit"}:
        print(
            f"mail2sms: note: account {keyid!r} is in the settings' [[accounts]]; "
            "`mail2sms serve` sets its fields (all but credit) from them again at start",
            file=sys.stderr,
        )
    _print_account(account, as_json=args.json)
    return 0


def _list_edits(
    args: argparse.Namespace, replaced: Mapping[str, Any]
) -> dict[str, Callable[[list[str]], list[str]]]:
    """For each list field given --add-…, --remove-… or --no-…: how to change its value."""
    from gateway.core.numbers import normalise

    same: dict[str, Callable[[str], str]] = {
        "domains": lambda d: d.strip().lower(),
        "blacklist": normalise,
    }
    edits: dict[str, Callable[[list[str]], list[str]]] = {}
    for field, option, _, _ in LIST_FIELDS:
        name = option.removeprefix("--")
        add: list[str] = getattr(args, f"add_{field}") or []
        remove: list[str] = getattr(args, f"remove_{field}") or []
        clear: bool = getattr(args, f"clear_{field}")
        if not (add or remove or clear):
            continue
        ways = [field in replaced, bool(add or remove), clear]
        if sum(ways) > 1:
            raise ConfigError(
                f"{option}, --add-{name}/--remove-{name}, --no-{field.replace('_', '-')}: "
                f"give one way of changing {field}"
            )
        key = same.get(field, str.strip)
        edits[field] = _list_edit(field, name, add, remove, clear, key)
    return edits


def _list_edit(
    field: str,
    name: str,
    add: list[str],
    remove: list[str],
    clear: bool,
    key: Callable[[str], str],
) -> Callable[[list[str]], list[str]]:
    def edit(current: list[str]) -> list[str]:
        if clear:
            return []
        kept = list(current)
        for value in remove:
            if all(key(item) != key(value) for item in kept):
                listed = ", ".join(current) or "empty"
                raise GatewayError(f"--remove-{name}: {value!r} is not in {field} ({listed})")
            kept = [item for item in kept if key(item) != key(value)]
        for value in add:
            if all(key(item) != key(value) for item in kept):
                kept.append(value)
        return kept

    return edit


def _invalid_field(exc: ValidationError) -> ConfigError:
    """A pydantic ValidationError as a usage error naming the option."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "?"
    message = str(error["msg"]).removeprefix("Value error, ")
    option = OPTION_OF.get(field, field)
    return ConfigError(f"{option}: {message} (got {error.get('input')!r})")


async def _conflict(gateway: Gateway, fields: Mapping[str, Any]) -> GatewayError:
    from gateway.store import reads

    keyid = fields.get("keyid")
    if keyid is not None:
        async with gateway.engine.connect() as conn:
            if await reads.account_exists(conn, keyid):
                return GatewayError(
                    f"--keyid: an account {keyid!r} already exists; "
                    f"`mail2sms accounts set {keyid} …` changes it"
                )
    return GatewayError(
        f"--login: {fields.get('login')!r} is taken by another account; choose another"
    )


def _print_account(account: Mapping[str, Any], *, as_json: bool) -> None:
    if as_json:
        _print_json(account)
        return
    width = max(len(name) for name in account)
    for name, value in account.items():
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, list):
            shown = ", ".join(value) or "-"
        else:
            shown = str(value) if value != "" else "-"
        print(f"{name.ljust(width)}  {shown}")


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


# Sending ------------------------------------------------------------------------------------


def _send(settings: Settings, args: argparse.Namespace) -> int:
    port = args.port if args.port is not None else settings.smtp.port
    api = (args.api or f"http://127.0.0.1:{settings.http.port}").rstrip("/")
    keyid = _send_keyid(settings, args)
    sender = args.sender_address or f"app@{_first_domain(settings, keyid, api)}"
    ack, not_ = args.ack, args.not_
    if args.wait and ack is None and not_ is None:
        ack = not_ = sender
    email_id = args.email_id if args.email_id is not None else str(time.time_ns() // 1000)

    fields: list[tuple[str, str]] = [("keyid", keyid)]
    attachments: list[tuple[str, bytes]] = []
    if args.csv is not None:
        if args.to or args.text is not None:
            raise ConfigError("--csv: the CSV files replace --to and --text; give one or the other")
        attachments = [
            (name, _read_file(path))
            for name, path in zip(("mobiles.csv", "message.csv"), args.csv, strict=True)
        ]
    else:
        if not args.to:
            raise ConfigError("--to: give at least one number (or --csv MOBILES MESSAGE)")
        if args.text is None:
            raise ConfigError("--text: give the message (an empty one is --text '')")
        if len(args.to) == 1:
            fields.append(("num", args.to[0]))
        else:
            fields += [(f"num{i}", number) for i, number in enumerate(args.to, 1)]
        fields.append(("sms", args.text))
    optional = (
        ("emetteur", args.emetteur),
        ("tracker", args.tracker),
        ("smslong", args.smslong),
        ("emailAck", ack),
        ("emailNot", not_),
        ("nostop", "1" if args.nostop else None),
    )
    fields += [(tag, value) for tag, value in optional if value is not None]
    fields.append(("emailId", email_id))
    message = request_email(
        request_body(fields),
        sender=sender,
        to=settings.smtp.gateway_addresses[0],
        attachments=attachments,
    )
    if args.print_only:
        sys.stdout.buffer.write(message.as_bytes())
        sys.stdout.flush()
        return 0

    answer = _submit_or_explain(args.host, port, sender, settings, message)
    print(f"mail2sms: emailId {email_id}: {answer}")
    if not args.wait:
        return 0
    return _wait_for_replies(
        api, email_id, str(message["Message-ID"]), ack=ack, not_=not_, timeout=args.timeout
    )


def _send_keyid(settings: Settings, args: argparse.Namespace) -> str:
    if args.keyid is not None:
        keyid: str = args.keyid
        return keyid
    if not settings.accounts:
        raise ConfigError("--keyid: the settings have no [[accounts]]; give the account's keyid")
    return settings.accounts[0].keyid


def _first_domain(settings: Settings, keyid: str, api: str) -> str:
    """The account's first domain: from the settings, else asked of the gateway's API."""
    import httpx

    for account in settings.accounts:
        if account.keyid == keyid and account.domains:
            return account.domains[0]
    try:
        response = httpx.get(f"{api}/api/v1/accounts/{keyid}", timeout=10)
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"--from: give the sender address (account {keyid!r} is not in the settings and "
            f"its domains cannot be asked of {api}: {exc})"
        ) from None
    domains = _json(response).get("domains") if response.status_code == 200 else None
    if not isinstance(domains, list) or not domains:
        raise ConfigError(
            f"--from: give the sender address (account {keyid!r} has no domain at {api}: "
            f"{response.status_code} {response.text[:200]})"
        )
    domain: str = domains[0]
    return domain


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"--csv: cannot read {path}: {exc.strerror or exc}") from None


def _submit_or_explain(
    host: str, port: int, sender: str, settings: Settings, message: EmailMessage
) -> str:
    try:
        return submit(host, port, sender, settings.smtp.gateway_addresses[0], message.as_bytes())
    except smtplib.SMTPRecipientsRefused as exc:
        answers = "; ".join(_answer(code, text) for code, text in exc.recipients.values())
        raise GatewayError(f"the gateway refused the recipient: {answers}") from None
    except smtplib.SMTPResponseException as exc:
        raise GatewayError(
            f"the gateway answered {_answer(exc.smtp_code, exc.smtp_error)}"
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise GatewayError(
            f"cannot send to {host}:{port} ({exc}); is `mail2sms serve` running? "
            "Its SMTP port is smtp.port of the settings, or give --host/--port"
        ) from None


def _answer(code: int, text: bytes | str) -> str:
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {shown}"


def _wait_for_replies(
    api: str, email_id: str, message_id: str, *, ack: str | None, not_: str | None, timeout: float
) -> int:
    """Print the Ack and the Not of our email as they arrive; 1 when one never comes."""
    import httpx

    try:
        with httpx.Client(base_url=api, timeout=MAX_WAIT + 10) as http:
            email = _our_email(http, message_id)
            if email is not None and (
                email["status"] == "not_processed"
                or (email["status"] == "refused" and email["code"] is not None)
            ):
                print(f"mail2sms: the gateway did not process it, so no reply: {email['reason']}")
                return EXIT_FAILURE
            wanted: list[tuple[str, str | None]] = [("ack", ack)]
            if email is None or email["status"] == "processed":
                wanted.append(("not", not_))
            for kind, address in wanted:
                if address is None:
                    continue
                reply = _wait_for_reply(http, kind, email_id, timeout)
                if reply is None:
                    print(
                        f"mail2sms: no {kind.capitalize()} for emailId {email_id} within "
                        f"{timeout:g}s; warnings on the email: {_warnings(email)}",
                        file=sys.stderr,
                    )
                    return EXIT_FAILURE
                print(f"--- {kind.capitalize()} emailId {email_id} to {reply['to']} ---")
                print(reply["body"].rstrip("\n"))
    except httpx.HTTPError as exc:
        raise GatewayError(
            f"--wait: cannot read the replies from {api} ({exc}); give the gateway's API "
            "with --api (http.port of the settings)"
        ) from None
    return 0


def _our_email(http: Any, message_id: str) -> dict[str, Any] | None:
    """Our email's record (committed before the 250, so among the newest), by Message-ID:
    a refused email has no emailId recorded to look it up by."""
    response = http.get("/api/v1/emails", params={"limit": 1000})
    response.raise_for_status()
    for item in response.json()["items"]:
        if item["message_id"] == message_id:
            found: dict[str, Any] = item
            return found
    return None


def _wait_for_reply(http: Any, kind: str, email_id: str, timeout: float) -> dict[str, Any] | None:
    """The newest reply of that kind for the emailId, long-polling until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = max(0.0, min(MAX_WAIT, deadline - time.monotonic()))
        params = {"kind": kind, "email_id": email_id, "wait_for": 1, "timeout": f"{left:.3f}"}
        response = http.get("/api/v1/replies", params=params)
        response.raise_for_status()
        items = response.json()["items"]
        if items:
            newest: dict[str, Any] = items[0]
            return newest
        if time.monotonic() >= deadline:
            return None


def _warnings(email: Mapping[str, Any] | None) -> str:
    if email is None:
        return "(the email is not in the gateway's list)"
    return "; ".join(email.get("warnings") or []) or "none"
