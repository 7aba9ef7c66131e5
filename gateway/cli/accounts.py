"""`mail2sms accounts create|list|set`: the accounts, straight in the database of the settings."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gateway.cli.common import command, opening_database, print_database, print_json
from gateway.config import Settings, domain_name, ip_network, phone_number, sender_id
from gateway.errors import ConfigError, ConflictError, FieldError, GatewayError, NotFoundError

if TYPE_CHECKING:
    from gateway.app import Gateway

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

login, password and keyid are generated when not given; the password is printed once, here
(no listing shows it)."""

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
# (field, option, metavar, help, check) of the list fields; `check` is the settings' own, so
# that an item the API or the settings file would refuse is refused here too, naming the option.
LIST_FIELDS = (
    ("domains", "--domain", "DOMAIN", "a sender domain (From: and envelope)", domain_name),
    ("senders", "--sender", "SENDER", "an approved sender id (emetteur)", sender_id),
    ("allowed_ips", "--allowed-ip", "IP", "a client IP or network (none: any IP)", ip_network),
    ("blacklist", "--blacklist", "NUMBER", "a number that gets code 11", phone_number),
)
OPTION_OF: dict[str, str] = {
    "keyid": "--keyid",
    "credit": "--credit",
    "rate_limit": "--rate-limit",
    **{field: option for field, option, *_ in (*TEXT_FIELDS, *FLAG_FIELDS, *LIST_FIELDS)},
}


def add_parser(commands: Any) -> None:
    accounts = command(commands, "accounts", "create, list and change accounts", ACCOUNTS_EPILOG)
    actions = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)

    create = command(actions, "create", "create an account and print it", CREATE_EPILOG)
    create.add_argument("--keyid", help="the request's <keyid> (generated when absent)")
    _add_account_options(create, replace_help="repeat for several")
    create.add_argument("--json", action="store_true", help="print the account as JSON")

    listing = command(actions, "list", "print every account (newest first)", LIST_EPILOG)
    listing.add_argument("--json", action="store_true", help="print {items, total} as JSON")

    change = command(actions, "set", "change some fields of an account", SET_EPILOG)
    change.add_argument("keyid", metavar="KEYID", help="the account to change")
    _add_account_options(change, replace_help="replaces the list; repeat for several")
    change.add_argument(
        "--add-credit", type=int, metavar="N", help="add N to the credit (negative: take away)"
    )
    for field, option, metavar, _, check in LIST_FIELDS:
        name = option.removeprefix("--")
        change.add_argument(
            f"--add-{name}",
            action="append",
            dest=f"add_{field}",
            type=_item(check),
            metavar=metavar,
            help=f"add one to {field}",
        )
        change.add_argument(
            f"--remove-{name}",
            action="append",
            dest=f"remove_{field}",
            type=_item(check),
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
        "--credit",
        type=_natural("--credit"),
        metavar="N",
        help="credit, in SMS parts (at creation, 0 when absent: every SMS then gets code 12)",
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
    for field, option, metavar, text, check in LIST_FIELDS:
        parser.add_argument(
            option,
            dest=field,
            action="append",
            type=_item(check),
            metavar=metavar,
            help=f"{text}; {replace_help}",
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


def _item(check: Callable[[str], str]) -> Callable[[str], str]:
    """An option's type from a settings check: what it refuses is a usage error naming the
    option; what it accepts is normalised as the account keeps it."""

    def parse(value: str) -> str:
        try:
            return check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = check.__name__
    return parse


def run(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_accounts(settings, args))


async def _accounts(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.app import Gateway

    # serve's own preparation (SQLite migrated, any other database checked at head), without
    # seeding the settings' accounts: `serve` owns those, the CLI must not undo its changes.
    with opening_database(settings.database.url):
        gateway = Gateway(settings.model_copy(update={"accounts": ()}))
    try:
        with opening_database(settings.database.url):
            await gateway.prepare_database()
        print_database(settings.database.url)
        if args.accounts_command == "list":
            return await _list_accounts(gateway, args)
        if args.accounts_command == "create":
            return await _create_account(gateway, args)
        return await _set_account(gateway, settings, args)
    finally:
        await gateway.stop()


async def _list_accounts(gateway: Gateway, args: argparse.Namespace) -> int:
    from gateway.store import reads

    async with gateway.engine.connect() as conn:
        items = (await reads.list_accounts(conn, limit=2**31)).items  # as the API lists them
    if args.json:
        print_json({"items": items, "total": len(items)})
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
    from gateway.store import admin

    fields = _given_fields(args)
    if args.keyid is not None:
        fields["keyid"] = args.keyid
    try:
        account = await admin.create_account(gateway.engine, fields, gateway.clock.now())
    except FieldError as exc:
        raise _option_error(exc, args.keyid) from None
    if args.credit is None:
        print(
            f"mail2sms: note: account {account['keyid']!r} has no credit: every SMS it asks "
            f"for gets code 12 until `mail2sms accounts set {account['keyid']} --credit N`",
            file=sys.stderr,
        )
    _print_account(account, as_json=args.json)
    return 0


async def _set_account(gateway: Gateway, settings: Settings, args: argparse.Namespace) -> int:
    from gateway.store import admin

    keyid: str = args.keyid
    given = _given_fields(args)
    edits = _list_edits(args, given)
    if args.credit is not None and args.add_credit is not None:
        raise ConfigError("--credit and --add-credit: give one of them, not both")
    if not given and not edits and args.add_credit is None:
        raise ConfigError(
            "nothing to change: give at least one option (`mail2sms accounts set --help`)"
        )

    def changes(current: dict[str, Any]) -> dict[str, Any]:
        """The new values, from the account as it is (its row locked until the commit)."""
        fields = dict(given)
        if args.add_credit is not None:
            fields["credit"] = current["credit"] + args.add_credit
            if fields["credit"] < 0:
                raise GatewayError(
                    f"--add-credit: account {keyid!r} has {current['credit']} credits; "
                    f"taking {-args.add_credit} would leave fewer than 0"
                )
        for field, edit in edits.items():
            fields[field] = edit(list(current[field]))
        return fields

    try:
        account = await admin.patch_account(gateway.engine, keyid, changes)
    except FieldError as exc:
        raise _option_error(exc) from None
    configured = {a.keyid for a in settings.accounts}
    if keyid in configured and set(given) | set(edits):
        print(
            f"mail2sms: note: account {keyid!r} is in the settings' [[accounts]]; "
            "`mail2sms serve` sets its fields (all but credit) from them again at start",
            file=sys.stderr,
        )
    shown = {name: value for name, value in account.items() if name != "password"}
    _print_account(shown, as_json=args.json)
    return 0


def _list_edits(
    args: argparse.Namespace, replaced: Mapping[str, Any]
) -> dict[str, Callable[[list[str]], list[str]]]:
    """For each list field given --add-…, --remove-… or --no-…: how to change its value."""
    edits: dict[str, Callable[[list[str]], list[str]]] = {}
    for field, option, *_ in LIST_FIELDS:
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
        edits[field] = _list_edit(field, name, add, remove, clear)
    return edits


def _list_edit(
    field: str, name: str, add: list[str], remove: list[str], clear: bool
) -> Callable[[list[str]], list[str]]:
    """The items are compared as the account keeps them: the options normalised them so."""

    def edit(current: list[str]) -> list[str]:
        if clear:
            return []
        kept = list(current)
        for value in remove:
            if value not in kept:
                listed = ", ".join(current) or "empty"
                raise GatewayError(f"--remove-{name}: {value!r} is not in {field} ({listed})")
            kept = [item for item in kept if item != value]
        kept += [value for value in dict.fromkeys(add) if value not in kept]
        return kept

    return edit


def _option_error(exc: FieldError, keyid: str | None = None) -> GatewayError:
    """A refusal of the store as one line naming the option (and how to go on)."""
    option = OPTION_OF.get(exc.field, f"--{exc.field.replace('_', '-')}")
    if isinstance(exc, NotFoundError):
        return GatewayError(f"{exc.reason}; `mail2sms accounts list` shows them")
    if isinstance(exc, ConflictError) and exc.field == "keyid":
        return GatewayError(
            f"{option}: {exc.reason}; `mail2sms accounts set {keyid} …` changes it"
        )
    if isinstance(exc, ConflictError):
        return GatewayError(f"{option}: {exc.reason}; choose another")
    return ConfigError(f"{option}: {exc.reason}")


def _print_account(account: Mapping[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(account)
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
