"""`mail2sms send`: build a request email, send it to a running gateway, wait for its replies."""

from __future__ import annotations

import argparse
import smtplib
import sys
import time
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from gateway.cli.common import EXIT_FAILURE, command
from gateway.client import request_body, request_email, submit, wait_for_items
from gateway.config import Settings
from gateway.errors import ConfigError, GatewayError
from gateway.web.models import MAX_WAIT

SEND_EPILOG = """\
examples:
  mail2sms send --to 0601020304 --text "Bonjour" --sender MaSociete --wait
  mail2sms send --to 0601020304 --to 0701020304 --text $'Line one\\nLine two'
  mail2sms send --csv mobiles.csv message.csv --ack ack@example.com
  mail2sms send --to 0699000021 --text "fails with code 21" --wait
  mail2sms send --to 0601020304 --text "Bonjour" --print > request.eml

Line breaks in --text are written Ö, as the provider requires (a literal Ö becomes a line
break too). With --wait and neither --ack nor --not, both replies are asked for at the
--from address; the gateway keeps them visible in its API even when it relays them.

Exit status: 0 sent (with --wait: and every recipient got code 0); 1 refused, a reply
missing, or (with --wait) a recipient given another code, each named on stderr; 2 a wrong
option."""


def add_parser(commands: Any) -> None:
    send = command(
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
        "--wait",
        action="store_true",
        help="wait for the Ack and the Not and print their XML; exit status 1 unless every "
        "recipient got code 0",
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


def run(settings: Settings, args: argparse.Namespace) -> int:
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
    return _every_number_sent(email_id, email)


def _every_number_sent(email_id: str, email: Mapping[str, Any] | None) -> int:
    """0 when every recipient got code 0; else 1, naming the others on stderr."""
    if email is not None and email["status"] == "duplicate":
        print(f"mail2sms: emailId {email_id} was already processed: nothing sent", file=sys.stderr)
        return EXIT_FAILURE
    results = email["results"] if email is not None else []
    failed = [r for r in results if r["code"] != 0]
    if not failed:
        return 0
    codes = "; ".join(
        f"{r['tel'] or 'the request'}: code {r['code']} ({r['message']})" for r in failed
    )
    print(
        f"mail2sms: emailId {email_id}: {len(failed)} of {len(results)} recipients not sent: "
        f"{codes}",
        file=sys.stderr,
    )
    return EXIT_FAILURE


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

    def fetch(extra: Mapping[str, str | int]) -> list[dict[str, Any]]:
        response = http.get("/api/v1/replies", params={"kind": kind, "email_id": email_id, **extra})
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    items = wait_for_items(fetch, 1, timeout)
    return items[0] if items else None


def _warnings(email: Mapping[str, Any] | None) -> str:
    if email is None:
        return "(the email is not in the gateway's list)"
    return "; ".join(email.get("warnings") or []) or "none"
