"""The client side of the gateway: request emails built and sent as applications do, and
the API's lists waited on (used by `mail2sms send` and by the pytest plugin)."""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, TypeVar
from xml.sax.saxutils import escape

from gateway.core.envoi import LINE_FEED_MARK
from gateway.web.models import MAX_WAIT

SMTP_TIMEOUT = 30.0
_LINE_END = re.compile(rb"\r\n|\n|\r(?!\n)")
Item = TypeVar("Item")


class Submission(smtplib.SMTP):
    """smtplib's client, keeping the server's final answer to DATA (sendmail drops it)."""

    answer = ""

    def data(self, msg: Any) -> tuple[int, bytes]:
        code, text = super().data(msg)
        self.answer = f"{code} {text.decode('utf-8', 'replace')}"
        return code, text


def submit(
    host: str,
    port: int,
    mail_from: str,
    recipient: str,
    raw: bytes,
    *,
    timeout: float = SMTP_TIMEOUT,
) -> str:
    """Send one email; the server's final answer ("250 …"), or smtplib's exception.
    Line ends become CRLF (smtplib does it for text only; a bare LF makes one endless line)."""
    with Submission(host, port, timeout=timeout) as client:
        client.sendmail(mail_from, [recipient], _LINE_END.sub(b"\r\n", raw))
        return client.answer


def request_body(fields: Sequence[tuple[str, str]]) -> str:
    """An `<envoi>` body with one tag a line; values escaped, line breaks written Ö."""
    lines = ["<envoi>"]
    for tag, value in fields:
        text = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", LINE_FEED_MARK)
        lines.append(f"<{tag}>{escape(text)}</{tag}>")
    lines.append("</envoi>")
    return "\n".join(lines) + "\n"


def request_email(
    body: str,
    *,
    sender: str,
    to: str,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> EmailMessage:
    """A plain-text request email, as an application writes it, with its CSV attachments."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "envoi"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    for filename, content in attachments:
        message.add_attachment(content, maintype="text", subtype="csv", filename=filename)
    return message


def wait_for_items(
    fetch: Callable[[Mapping[str, str | int]], list[Item]], count: int, timeout: float
) -> list[Item]:
    """Long-poll one list of the API until it has `count` items or `timeout` seconds pass;
    the last items either way. `fetch` gets the query's extra parameters (wait_for,
    timeout): one poll lasts at most MAX_WAIT seconds, so a longer wait polls again."""
    deadline = time.monotonic() + timeout
    while True:
        left = max(0.0, min(MAX_WAIT, deadline - time.monotonic()))
        items = fetch({"wait_for": count, "timeout": f"{left:.3f}"})
        if len(items) >= count or time.monotonic() >= deadline:
            return items
