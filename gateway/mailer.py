"""Reply emails: the Ack/Not message as bytes on the wire, and handing it to the relay over SMTP."""

from __future__ import annotations

import asyncio
import binascii
import re
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime

import aiosmtplib

from gateway.core.replies import encode
from gateway.errors import DeliveryError, PermanentDeliveryError

KINDS = {"ack": "Ack", "not": "Not"}
# RFC 5322 caps a line at 998 octets; aiosmtpd and others refuse longer DATA lines with 500.
MAX_LINE = 998
_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
# One plain ASCII address, nothing a header or an SMTP command could be split on.
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+")


def build_reply(
    *,
    kind: str,
    to: str,
    email_id: str | None,
    body: str,
    sender: str,
    reply_id: int,
    date: datetime,
) -> bytes:
    """The reply email, CRLF line endings throughout, ready for SMTP DATA.

    The body is the XML encoded ISO-8859-1, characters outside Latin-1 as `&#NNNN;`. It is
    sent `8bit`, so the decoded body is those very bytes, except that every line ending (LF,
    CR or CRLF) becomes CRLF and a final CRLF is added when missing (SMTP DATA cannot carry an
    unterminated last line). A body with a line over 998 octets is sent quoted-printable
    instead. `date` should be the reply's creation time and `reply_id` its row id: together
    they give a Message-ID that stays the same when the reply is delivered again.
    """
    label = KINDS.get(kind)
    if label is None:
        raise ValueError(f"reply kind {kind!r} is not one of {sorted(KINDS)}")
    for name, address in (("to", to), ("sender", sender)):
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"{name} address {address!r} is not one plain email address")
    domain = sender.rpartition("@")[2]
    utc = date.astimezone(UTC)
    data = _LINE_ENDING.sub(b"\r\n", encode(body))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    lines = data.split(b"\r\n")[:-1]
    if all(len(line) <= MAX_LINE for line in lines):
        encoding = "8bit"
    else:
        encoding = "quoted-printable"
        data = b"".join(binascii.b2a_qp(line).replace(b"=\n", b"=\r\n") + b"\r\n" for line in lines)
    headers = (
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {_subject(label, email_id)}",
        f"Date: {format_datetime(utc)}",
        f"Message-ID: <reply-{reply_id}.{utc:%Y%m%d%H%M%S}@{domain}>",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="ISO-8859-1"',
        f"Content-Transfer-Encoding: {encoding}",
    )
    return "".join(f"{header}\r\n" for header in headers).encode("ascii") + b"\r\n" + data


def _subject(label: str, email_id: str | None) -> str:
    shown = "?" if email_id is None else "".join(c if c.isprintable() else " " for c in email_id)
    subject = f"{label} emailId {shown}"
    if subject.isascii():
        return subject
    return Header(subject, "utf-8").encode(linesep="\r\n")


async def deliver(
    host: str, port: int, sender: str, to: str, message: bytes, timeout: float
) -> None:
    """Hand one message to the relay (plain SMTP, no TLS) within `timeout` seconds in all.

    Raises DeliveryError on any failure, PermanentDeliveryError when the relay refused the
    sender, the recipient or the data with a 5xx. Cancelled, it hangs up at once.
    """
    client = aiosmtplib.SMTP(hostname=host, port=port, timeout=timeout, start_tls=False)
    try:
        async with asyncio.timeout(timeout):
            await client.connect()
            await client.ehlo()
            options = ["BODY=8BITMIME"] if client.supports_extension("8bitmime") else []
            await client.sendmail(sender, [to], message, mail_options=options)
    except Exception as exc:
        client.close()
        error = _delivery_error(exc, f"relay {host}:{port}", to, timeout)
        if error is None:
            raise
        raise error from exc
    except BaseException:
        # A polite QUIT would wait on a relay that may never answer (aiosmtplib's __aexit__).
        client.close()
        raise
    try:
        async with asyncio.timeout(timeout):
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass  # the relay has accepted the reply already
    finally:
        client.close()


def _delivery_error(exc: Exception, where: str, to: str, timeout: float) -> DeliveryError | None:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusal = exc.recipients[0]
        return _refused(f"{where} refused recipient {to}", refusal.code, refusal.message)
    if isinstance(
        exc,
        aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError,
    ):
        return _refused(f"{where} refused the reply to {to}", exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"{where} answered {exc.code} {exc.message}")
    if isinstance(exc, TimeoutError):
        return DeliveryError(f"{where} did not answer within {timeout:g} s")
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        return DeliveryError(f"{where} cannot be reached: {exc}")
    if isinstance(exc, ValueError):  # an address aiosmtplib will not put in an SMTP command
        return PermanentDeliveryError(f"cannot send to {to!r}: {exc}")
    return None


def _refused(what: str, code: int, message: str) -> DeliveryError:
    error = PermanentDeliveryError if 500 <= code < 600 else DeliveryError
    return error(f"{what}: {code} {message}")
