"""Fuzzing the pure path of an email: intake.read → outcome.claim_for → outcome.decide.

Whatever the bytes, the path never raises, and what it hands to the store is storable: UTF-8
encodable text without NUL (PostgreSQL refuses NUL in text; lone surrogates encode nowhere).
The number of examples comes from a Hypothesis profile: "ci" (2000 each) when CI=true,
"dev" (200 each) otherwise; both without deadline, as CI machines stall.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import quopri
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core import intake, outcome, replies
from gateway.core.model import (
    GSM7,
    UCS2,
    Account,
    EmailStatus,
    MailContent,
    ReadLimits,
    RuleSettings,
)

settings.register_profile(
    "ci", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# Applied per test rather than loaded, so that other modules' own settings stay theirs.
PROFILE = settings.get_profile("ci" if os.environ.get("CI") == "true" else "dev")

_T = TypeVar("_T")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Paris
LIMITS = ReadLimits(max_recipients=20)  # the shipped body, tag and value bounds
RULES = RuleSettings(max_recipients=20)
ACCOUNT = Account(
    id=1,
    keyid="demo",
    domains=frozenset({"example.com"}),
    credit=40,
    senders=frozenset({"MaSociete"}),
    blacklist=frozenset({"0601020305"}),
)


def storable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def run_the_path(raw: bytes) -> None:
    """What the service hands the writer for one email (intake.read) and what the writer
    stores of it (outcome.claim_for, outcome.decide), with the invariants the store relies on."""
    inbound = intake.read(raw, envelope_from="", client_ip="127.0.0.1", limits=LIMITS)
    content, request = inbound.content, inbound.request
    assert isinstance(content, MailContent)
    for text in (content.from_address, content.subject, content.message_id):
        assert storable(text), text
    if request is None:
        assert content.text is None and content.reason
    else:
        assert storable(request.keyid) and storable(request.email_id)
        assert len(request.recipients) <= LIMITS.max_recipients
        assert request.refusal is None or request.recipients == ()
        # The same request from the demo account with a valid emailId: every request's
        # recipients are judged, whatever its own keyid, From: and emailId say.
        authorised = dataclasses.replace(
            inbound,
            content=dataclasses.replace(content, from_address="app@example.com"),
            request=dataclasses.replace(request, keyid=ACCOUNT.keyid, email_id="1"),
        )
        assert outcome.claim_for(authorised, ACCOUNT) == "1"
        check_outcome(outcome.decide(authorised, ACCOUNT, claimed=True, now=NOW, settings=RULES))
    account = ACCOUNT if outcome.account_key(inbound) == ACCOUNT.keyid else None
    claim = outcome.claim_for(inbound, account)
    assert claim is None or (claim.isdigit() and len(claim) <= 64)
    for claimed in (True, False) if claim is not None else (False,):
        check_outcome(outcome.decide(inbound, account, claimed=claimed, now=NOW, settings=RULES))


def check_outcome(result: outcome.Outcome) -> None:
    """What the writer stores is storable, and the SMS, debit and codes agree."""
    assert result.status in EmailStatus
    for text in (result.reason, result.keyid or "", result.email_id or "", result.tracker):
        assert storable(text)
    assert len(result.keyid or "") <= 64 and len(result.email_id or "") <= 64
    assert len(result.tracker) <= 50
    assert len(result.results) <= LIMITS.max_recipients
    assert all((r.sms is not None) == (r.code == 0) for r in result.results)
    assert result.debit == sum(sms.parts for sms in result.sms) <= ACCOUNT.credit
    for sms in result.sms:
        assert sms.parts >= 1 and sms.encoding in (GSM7, UCS2)
        assert storable(sms.text) and storable(sms.to) and storable(sms.sender)
    for reply in result.replies:
        assert reply.to.isascii() and reply.to.strip() == reply.to
        assert storable(reply.body)
        replies.encode(reply.body)
    for warning in result.warnings:
        assert storable(warning)


# --- the tape ----------------------------------------------------------------------------------
#
# Structured inputs are decoded from one byte string that Hypothesis draws: every choice (a
# header, a charset, a transfer encoding, multipart nesting, a tag, a value) reads the next
# byte of that tape, and an exhausted tape reads zeros, which pick the first (simplest)
# option. Drawing one value per example keeps thousands of examples fast (drawing each choice
# through a strategy of its own cost ~30 ms an example), and Hypothesis still shrinks a
# failure to a short tape of small bytes: a small email.

TAGS = [
    "keyid",
    "num",
    "num1",
    "num2",
    "num10",
    "sms",
    "sms1",
    "sms2",
    "emetteur",
    "tracker",
    "smslong",
    "emailId",
    "emailAck",
    "emailNot",
    "nostop",
]
TAG_NAMES = [*TAGS, *(t.upper() for t in TAGS), "Num1", "SMS", "x", "_a.b-c", "envoi", "a" * 40]
SPECIALS = [
    "&",
    "<",
    ">",
    "Ö",
    "\x00",
    "&amp;",
    "&lt;",
    "&#10;",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<3",
    "\r\n",
    "\n",
    "\r",
    " ",
    "\t",
    "€",
    "ç",
    "^{}",
    "😀",
    "O\u0308",
    "\u2028",
    "<envoi>",
    "</envoi>",
    "<sms>",
    "</num1>",
    "<!DOCTYPE e [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>",
    "&x;",
    "demo",
    "MaSociete",
    "0601020304",
    "0601020305",
    "+33 6 01 02 03 04",
    "0699000021",
    "0699000999",
    "0044201234567",
    "999",
    "-1",
    "1",
    "app@example.com",
    "a@x.com, b@y.com",
    "a@x.com\r\nBcc: v@evil.test",
    "=?utf-8?q?=00?=",
]
ALPHABET = "aZ09 .-_;:@/\\\"'=?%+éèàùÇÖöüß€œ’«\x00\x01\x1b\x7f\x85\xa0\u200b\ufeff\ufffd"
CHARSETS = [
    "utf-8",
    "UTF-8",
    '"utf-8"',
    "iso-8859-1",
    "windows-1252",
    "us-ascii",
    "iso-8859-15",
    "utf-16",
    "utf-7",
    "koi8-r",
    "base64",
    "x-unknown",
    "",
]
ENCODINGS = ["", "7bit", "8bit", "binary", "quoted-printable", "base64", "Base64 ", "x-uuencode"]
CONTENT_TYPES = ["text/plain", "text/plain", "text/plain", "text/html", "text/csv", "app/x", "text"]
FILENAMES = [
    None,
    None,
    None,
    "mobiles.csv",
    "message.csv",
    "C:\\tmp\\MOBILES.CSV",
    "=?utf-8?q?message.csv?=",
    "x.txt",
    "",
]
SUBTYPES = ["mixed", "mixed", "alternative", "related", "x-weird"]
BOUNDARIES = ["b", "==b==", "a'(b)+_,./:=?-", "x" * 70, ""]
FROMS = [
    b"app@example.com",
    b'"Zo\xc3\xab" <app@example.com>',
    b"=?utf-8?q?app=40example.com?= <app@evil.test>",
    b"app@example.com, b@example.com",
    b"<app@example.com",
    b"\xff\xfe\x00",
    b"",
]
HEADER_BITS = [b"=?utf-8?b?w6k=?=", b"=?bogus?q?x?=", b"\r\n ", b"\xe9", b"\x00", b"x", b" "]
HEADER_NAMES = [b"X-A", b"Content-Type", b"From", b"Subject", b"x-\xc3\xa9", b"Content-Disposition"]


# Values a request really holds, by tag (numX and smsX as num and sms), mixed with the above.
TYPICAL = {
    "keyid": ["demo", "", "nope", " demo "],
    "num": [
        "0601020304",
        "0601020305",
        "0701020304",
        "+33 6 01 02 03 04",
        "0033601020304",
        "0699000021",
        "0699000012",
        "0699000000",
        "0044201234567",
        "0145678901",
        "06",
        "",
    ],
    "sms": ["Bonjour", "", "a" * 170, "é€ç😀", "ÖÖ", "x &amp; y", "{[~]}" * 40],
    "emetteur": ["MaSociete", "", "Bad!", "X", "12345"],
    "tracker": ["t-1", "", "é" * 60],
    "smslong": ["1", "2", "999", "0", "-1", "x", ""],
    "emailid": ["1", "42", "", "abc", "1" * 70],
    "emailack": ["ack@example.com", "a@x.com, b@y.com", ""],
    "emailnot": ["not@example.com", ""],
    "nostop": ["1", "0"],
}


class Tape:
    """Choices read one byte at a time; past the end every byte is 0."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def byte(self) -> int:
        self._at += 1
        return self._data[self._at - 1] if self._at <= len(self._data) else 0

    def pick(self, options: Sequence[_T]) -> _T:
        return options[self.byte() % len(options)]

    def count(self, most: int) -> int:
        return self.byte() % (most + 1)

    def text(self, most: int) -> str:
        chars: list[str] = []
        for _ in range(self.count(most)):
            if self.byte() % 4:
                chars.append(self.pick(ALPHABET))
            else:  # any code point but a surrogate
                code = (self.byte() << 16 | self.byte() << 8 | self.byte()) % 0x110000
                chars.append("\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code))
        return "".join(chars)

    def value(self) -> str:
        return "".join(
            self.pick(SPECIALS) if self.byte() % 2 else self.text(8) for _ in range(self.count(5))
        )

    def value_of(self, tag: str) -> str:
        """Mostly what such a tag holds, sometimes with anything after it, sometimes anything."""
        options = TYPICAL.get(tag.lower().rstrip("0123456789"))
        kind = self.byte() % 4
        if options is None or kind == 3:
            return self.value()
        return self.pick(options) + (self.value() if kind == 2 else "")


# --- arbitrary bytes ---------------------------------------------------------------------------


@PROFILE
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    run_the_path(raw)


HEADER_SOUP = [
    b"From: app@example.com\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: text/plain; charset=utf-8\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Disposition: attachment; filename=mobiles.csv\r\n",
    b"\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"<envoi><keyid>demo</keyid><num>0601020304</num><emailId>1</emailId></envoi>\r\n",
    b"\x00",
    b"\xff\xfe",
    b"=?utf-8?b?AA==?=",
    b" ",
]


def soup(data: bytes) -> bytes:
    """Mail-looking pieces and raw bytes, in the order the tape says."""
    tape = Tape(data)
    pieces = []
    for _ in range(tape.count(25)):
        if tape.byte() % 2:
            pieces.append(tape.pick(HEADER_SOUP))
        else:
            pieces.append(bytes(tape.byte() for _ in range(tape.count(30))))
    return b"".join(pieces)


@PROFILE
@given(st.binary(min_size=60, max_size=400).map(soup))
def test_mail_shaped_bytes_never_raise(raw: bytes) -> None:
    run_the_path(raw)


# --- structured emails -------------------------------------------------------------------------


def envoi_body(tape: Tape) -> str:
    pieces = [tape.value(), tape.pick(["<envoi>", "<ENVOI >", "<envoi >"])]
    for _ in range(tape.count(10)):
        name = tape.pick(TAG_NAMES)
        value = tape.value_of(name)
        shape = tape.byte() % 5
        if shape < 3:
            pieces.append(f"<{name}>{value}</{name.lower()}>")
        elif shape == 3:
            pieces.append(f"<{name}>{value}")
        else:
            pieces.append(f"<{name}/>")
        pieces.append(tape.pick(["\n", "", "\r\n", " "]))
    pieces.append(tape.pick(["</envoi>", "", "</ENVOI>"]))
    pieces.append(tape.value())
    return "".join(pieces)


def encoded(text: str, charset: str, cte: str) -> bytes:
    """The body as a mail client would write it, sometimes wrongly."""
    try:
        data = text.encode(charset.strip('"') or "utf-8", "replace")
    except (LookupError, UnicodeError):
        data = text.encode("utf-8")
    kind = cte.strip().lower()
    if kind == "base64":
        return base64.encodebytes(data)
    if kind == "quoted-printable":
        return quopri.encodestring(data)
    return data


def leaf(tape: Tape, filename: str | None) -> bytes:
    ctype, charset, cte = tape.pick(CONTENT_TYPES), tape.pick(CHARSETS), tape.pick(ENCODINGS)
    if filename is not None and filename.lower().endswith("mobiles.csv"):
        lines = [
            ";;".join([tape.value_of("num"), *(tape.value() for _ in range(tape.count(3)))])
            for _ in range(tape.count(6))
        ]
        text = tape.pick(["\r\n", "\n", "\r"]).join(lines)
    elif filename is not None:
        text = tape.value_of("sms") + "[1] [2] [1234567]" + tape.value()
    else:
        text = envoi_body(tape)
    headers = f"Content-Type: {ctype}"
    if charset:
        headers += f"; charset={charset}"
    headers += tape.pick(["", "; format=flowed", "; format=flowed; delsp=yes", "; format=fixed"])
    headers += "\r\n"
    if cte:
        headers += f"Content-Transfer-Encoding: {cte}\r\n"
    if filename is not None:
        disposition = tape.pick(["attachment", "inline", "bogus"])
        headers += f'Content-Disposition: {disposition}; filename="{filename}"\r\n'
    return headers.encode("utf-8") + b"\r\n" + encoded(text, charset, cte)


def multipart(tape: Tape, subtype: str, parts: list[bytes]) -> bytes:
    boundary = tape.pick(BOUNDARIES)
    mark = boundary.encode()
    out = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\npreamble\r\n'.encode()
    for one in parts:
        out += b"--" + mark + b"\r\n" + one + b"\r\n"
    return out + tape.pick([b"--" + mark + b"--\r\n", b"", b"--" + mark + b"\r\n"])


def part(tape: Tape, depth: int) -> bytes:
    shape = tape.byte() % 4 if depth < 3 else 0
    if shape == 0:  # a single part
        return leaf(tape, tape.pick(FILENAMES))
    if shape == 1:  # a request with its CSV files (sometimes only one of them)
        files = tape.pick(
            [
                ["mobiles.csv", "message.csv"],
                ["message.csv", "mobiles.csv"],
                ["mobiles.csv"],
                ["C:\\x\\MOBILES.CSV", "message.csv", "x.txt"],
            ]
        )
        return multipart(tape, "mixed", [leaf(tape, None), *(leaf(tape, f) for f in files)])
    subtype = tape.pick(SUBTYPES)
    return multipart(tape, subtype, [part(tape, depth + 1) for _ in range(tape.count(3))])


def header_value(tape: Tape) -> bytes:
    return b"".join(tape.pick(HEADER_BITS) for _ in range(tape.count(4)))


def email_from(tape: Tape) -> bytes:
    headers = b"From: " + tape.pick(FROMS) + b"\r\nTo: sendsms@isendpro-api.com\r\n"
    headers += b"Subject: " + header_value(tape) + b"\r\n"
    headers += b"Message-ID: " + header_value(tape) + b"\r\n"
    for _ in range(tape.count(2)):
        headers += tape.pick(HEADER_NAMES) + b": " + header_value(tape) + b"\r\n"
    headers += tape.pick([b"MIME-Version: 1.0\r\n", b""])
    return headers + part(tape, 0)


@PROFILE
@given(st.binary(min_size=200, max_size=600).map(lambda data: email_from(Tape(data))))
def test_structured_emails_never_raise(raw: bytes) -> None:
    run_the_path(raw)


# --- requests, field by field ------------------------------------------------------------------


def plain_request(data: bytes) -> bytes:
    """A well-formed text/plain request whose tags and values are the tape's."""
    tape = Tape(data)
    charset, cte = tape.pick(CHARSETS), tape.pick(ENCODINGS)
    tags = "".join(
        f"<{tag}>{tape.value_of(tag)}</{tag}>\n"
        for tag in (tape.pick(TAGS) for _ in range(tape.count(8)))
    )
    body = f"<envoi>\n<keyid>demo</keyid>\n{tags}</envoi>\n"
    headers = f"From: app@example.com\r\nContent-Type: text/plain; charset={charset}\r\n"
    if cte:
        headers += f"Content-Transfer-Encoding: {cte}\r\n"
    return headers.encode() + b"\r\n" + encoded(body, charset, cte)


@PROFILE
@given(st.binary(min_size=100, max_size=300).map(plain_request))
def test_plain_requests_never_raise(raw: bytes) -> None:
    run_the_path(raw)
