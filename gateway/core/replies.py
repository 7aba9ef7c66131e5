"""The Ack and Not reply bodies, byte for byte in the provider's shapes, and reply addresses."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from gateway.core import codes

DECLARATION = '<?xml version="1.0" encoding="ISO-8859-1"?>'
NO_EMAIL_ID = "?"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
CHARSET = "iso-8859-1"

# One addr-spec, nothing else: no display name, no list, no CR/LF or header text.
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
)


def reply_address(value: str) -> str | None:
    """The address a reply may go to, or None when it is not exactly one plain address."""
    candidate = value.strip()
    if _ADDRESS.fullmatch(candidate) is None or ".." in candidate.split("@", 1)[1]:
        return None
    return candidate


def ack(email_id: str | None, code: int) -> str:
    return "\n".join(
        (
            DECLARATION,
            "<etatAck>",
            f"<emailId>{_text(email_id or NO_EMAIL_ID)}</emailId>",
            f"<code>{code}</code>",
            f"<message>{_text(codes.ACK_MESSAGES[code])}</message>",
            "</etatAck>",
            "",
        )
    )


def not_report(email_id: str | None, results: Sequence[tuple[str, int]], *, numbered: bool) -> str:
    """The Not body: `<etat>` for a `num` request, `<etatN>` for numX or CSV (N from 1)."""
    lines = [
        DECLARATION,
        "<etatNot>",
        f"<emailId>{_text(email_id or NO_EMAIL_ID)}</emailId>",
        "</etatNot>",
    ]
    for index, (tel, code) in enumerate(results, start=1):
        n = str(index) if numbered else ""
        lines.append(
            f"<etat{n}>\n<code{n}>{code}</code{n}>\n<tel{n}>{_text(tel)}</tel{n}>\n"
            f"<message{n}>{_message(code)}</message{n}>\n</etat{n}>"
        )
    lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class NotReport:
    """A Not body as what it says, rendered when its text is asked for (`body`).

    Why: a 500-number request's Not is 63 KB of XML, a third of the bytes the request
    writes; the store keeps what it says instead (gateway/store/tables.py, ReplyBody) and
    renders it when read, the same text byte for byte (bench/)."""

    email_id: str | None
    results: tuple[tuple[str, int], ...]  # (tel as the client wrote it, code), in order
    numbered: bool

    @property
    def body(self) -> str:
        return not_report(self.email_id, self.results, numbered=self.numbered)


def encode(body: str) -> bytes:
    """The bytes of a reply body: ISO-8859-1, anything outside it as a character reference."""
    return body.encode(CHARSET, "xmlcharrefreplace")


@functools.lru_cache(maxsize=256)
def _message(code: int) -> str:
    return _text(codes.message(code))


def _text(value: str) -> str:
    if value.isalnum():
        return value  # nothing to remove or escape: the common tel, hundreds per report
    # Control characters (a CR in a tel value would become a line break on the wire) go.
    return escape(_CONTROL.sub("", value))
