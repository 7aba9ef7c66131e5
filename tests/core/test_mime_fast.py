"""The simple emails' reader (mime._simple_message) against the stdlib's parser it skips."""

from __future__ import annotations

import base64
import quopri
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from bench.load import template
from gateway.core import mime
from gateway.core.model import MailContent

MAIL = Path(__file__).parent.parent / "fixtures" / "mail"
FROM = b"From: Jean <jean@example.com>\r\n"
QP = b"Content-Transfer-Encoding: quoted-printable\r\n"


def smtp_content(raw: bytes) -> bytes:
    """The bytes aiosmtpd hands over: un-dot-stuffed, without the final ".\r\n"."""
    assert raw.endswith(b"\r\n.\r\n")
    lines = raw[:-3].split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


def bench_email(kind: str, recipients: int) -> bytes:
    return smtp_content(template(kind, recipients, "a296464ce012b8ab710a").replace(b"@@ID@@", b"7"))


def read_both(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[MailContent, MailContent, int]:
    """What the parser alone reads, what extract_named reads, and how often it parsed."""
    general, general_parts = mime._read(mime._parsed(raw))
    parsed = mime._parsed
    calls: list[bytes] = []

    def counted(raw: bytes) -> Message:
        calls.append(raw)
        return parsed(raw)

    monkeypatch.setattr(mime, "_parsed", counted)
    content, parts = mime.extract_named(raw)
    assert [p.as_bytes() for p in parts] == [p.as_bytes() for p in general_parts]
    return general, content, len(calls)


def assert_same_message(simple: Message, parsed: Message) -> None:
    assert list(simple.raw_items()) == list(parsed.raw_items())
    # get_payload() would decode 8-bit bytes, and raises on an RFC 2231 charset
    assert simple._payload == parsed._payload
    assert not parsed.is_multipart() and simple.get_unixfrom() == parsed.get_unixfrom()
    assert (simple.preamble, simple.epilogue) == (parsed.preamble, parsed.epilogue)
    assert simple.get_default_type() == parsed.get_default_type()


# (id, raw, whether the simple reader takes it)
CASES: list[tuple[str, bytes, bool]] = [
    ("bench-single", bench_email("single", 1), True),
    ("bench-numx-500", bench_email("numx", 500), True),
    ("bench-csv", bench_email("csv", 3), False),
    ("lf", b"From: a@b.c\nSubject: hi\n\nbody\n", True),
    ("crlf-headers-lf-blank", b"From: a@b.c\r\nSubject: hi\r\n\nbody\r\n", True),
    ("lf-headers-crlf-blank", b"From: a@b.c\nSubject: hi\n\r\nbody\n", True),
    ("folded", FROM + b"Subject: a\r\n long\r\n\tsubject\r\nX-A: \r\n \r\n\r\nbody", True),
    (
        "folded-content-type",
        FROM + b"Content-Type: text/plain;\r\n\tcharset=iso-8859-1\r\n\r\n\xe9t\xe9\r\n",
        True,
    ),
    ("no-content-type", FROM + b"\r\n\xc3\xa9t\xc3\xa9\r\n", True),
    ("utf-8", FROM + b'Content-Type: text/plain; charset="utf-8"\r\n\r\n\xc3\xa9\r\n', True),
    ("us-ascii-8bit", FROM + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n\xe9\r\n", True),
    ("unknown-charset", FROM + b"Content-Type: text/plain; charset=x-nope\r\n\r\n\x80\r\n", True),
    ("qp", FROM + QP + b"\r\nsoft=\r\nbreak a=3Db =C3=A9=E9 =\n=ZZ\r\n", True),
    (
        "base64",
        FROM
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes("L'été\r\n".encode()).replace(b"\n", b"\r\n"),
        True,
    ),
    ("base64-garbage", FROM + b"Content-Transfer-Encoding: base64\r\n\r\nw6k*!\r\nA\r\n", True),
    ("cte-odd-case", FROM + b"Content-Transfer-Encoding:  Quoted-Printable \r\n\r\na=3Db", True),
    ("cte-uuencode", FROM + b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n", True),
    ("cte-unknown", FROM + b"Content-Transfer-Encoding: x-weird\r\n\r\na=3Db", True),
    (
        "flowed-delsp",
        FROM
        + b"Content-Type: text/plain; format=flowed; delsp=yes\r\n"
        + QP
        + b"\r\nL'=C3=A9t=C3=A9 est =\r\nfini \r\n> cit\xc3\xa9 \r\n> ici\r\n-- \r\nJ\r\n",
        True,
    ),
    ("flowed-no-delsp", FROM + b"Content-Type: TEXT/PLAIN; Format=Flowed\r\n\r\na \r\nb\r\n", True),
    (
        "rfc2231-params",
        FROM + b"Content-Type: text/plain; charset*=utf-8''x; format*0=flo;"
        b" format*1=wed\r\n\r\na \r\nb\r\n",
        True,
    ),
    (
        "quoted-params",
        FROM + b'Content-Type: text/plain; charset="iso\\"8859-1"; x=";"\r\n\r\n\xe9\r\n',
        True,
    ),
    (
        "encoded-subject",
        FROM + b"Subject: =?utf-8?q?L=27=C3=A9t=C3=A9?= =?iso-8859-1?b?6Q==?="
        b"\r\nMessage-ID:  <x@y>  \r\n\r\nb",
        True,
    ),
    ("display-name-from", b'From: "Martin, Sophie" <Sophie.Martin@Example.com>\r\n\r\nb', True),
    ("two-addresses-from", b"From: a@b.c, d@e.f\r\n\r\nb", True),
    (
        "duplicate-headers",
        b"From: a@b.c\r\nFrom: d@e.f\r\nContent-Type: text/plain; charset=utf-8"
        b"\r\ncontent-type: text/plain; charset=iso-8859-1\r\nSubject: 1\r\nSUBJECT: 2\r\n"
        b"\r\n\xc3\xa9",
        True,
    ),
    ("nul-in-body", FROM + b"Subject: x\r\n\r\na\x00b\r\n\x00", True),
    ("cr-in-body", FROM + b"\r\na\rb\r\r\nc\n", True),
    ("empty-body", FROM + b"Subject: x\r\n\r\n", True),
    ("no-blank-line-at-end", FROM + b"Subject: x\r\n", True),
    ("no-blank-line-body", FROM + b"<envoi>\r\n<keyid>k</keyid>\r\n</envoi>\r\n", True),
    ("body-line-with-spaced-name", FROM + b"Not A Header: x\r\nbody\r\n", True),
    ("body-line-8bit", FROM + b"\xe9t\xe9: x\r\n", True),
    ("empty", b"", True),
    ("only-blank-line", b"\r\nbody", True),
    ("odd-field-names", b"X-!#$%&'*+-.^_`|~9;<=>?@[]{}: v\r\nA:\r\n\r\nb", True),
    ("type-without-slash", FROM + b"Content-Type: text\r\n\r\nb", True),
    ("text-html", FROM + b"Content-Type: text/html\r\n\r\n<p>x</p>", True),
    ("application", FROM + b"Content-Type: application/pdf\r\n\r\n%PDF", True),
    (
        "multipart-mixed",
        FROM + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n",
        False,
    ),
    (
        "multipart-alternative",
        FROM + b"Content-Type: Multipart/Alternative; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        False,
    ),
    ("multipart-no-boundary", FROM + b"Content-Type: multipart/mixed\r\n\r\nx", False),
    ("message-rfc822", FROM + b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx", False),
    ("message-delivery-status", b"Content-Type: message/delivery-status\r\n\r\nA: b\r\n", False),
    ("8bit-header", b"From: J\xc3\xa9r\xc3\xb4me <j@example.com>\r\n\r\nb", False),
    ("8bit-continuation", b"Subject: a\r\n \xe9\r\n\r\nb", False),
    ("nul-in-header", b"Subject: a\x00b\r\n\r\nb", False),
    ("control-in-header", b"Subject: a\x0bb\r\n\r\nb", False),
    ("bare-cr-in-header", b"Subject: a\rb\r\n\r\nb", False),
    ("bare-cr-blank-line", b"Subject: a\r\n\rb", False),
    (
        "mbox-from-line",
        b"From jean@example.com Tue Dec  1 10:00:00 2026\r\nSubject: a\r\n\r\nb",
        False,
    ),
    ("mbox-from-line-later", b"Subject: a\r\nFrom jean@example.com\r\n\r\nb", False),
    ("missing-field-name", b"Subject: a\r\n: b\r\n\r\nb", False),
    ("first-line-continuation", b" Subject: a\r\n\r\nb", False),
    ("header-without-line-end", b"Subject: a", False),
]


@pytest.mark.parametrize(("raw", "simple"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_simple_reader_reads_as_the_parser(
    raw: bytes, simple: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = mime._simple_message(raw)
    assert (message is not None) == simple
    if message is not None:
        assert_same_message(message, mime._parsed(raw))
    general, content, parses = read_both(raw, monkeypatch)
    assert content == general
    assert parses == (0 if simple else 1)


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize("name", sorted(p.name for p in MAIL.glob("*.eml")))
def test_client_emails_read_as_the_parser(
    name: str, crlf: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = (MAIL / name).read_bytes()
    raw = raw.replace(b"\n", b"\r\n") if crlf else raw
    general, content, _ = read_both(raw, monkeypatch)
    assert content == general


def test_bench_email_is_read_without_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = bench_email("single", 1)
    general, content, parses = read_both(raw, monkeypatch)
    assert parses == 0 and content == general
    assert content.text is not None and "<emailId>7</emailId>" in content.text
    assert (content.from_address, content.subject) == ("app@example.com", "envoi")


def test_too_many_parts_are_still_read_from_the_headers_only() -> None:
    body = "".join(f"--b\r\n{n}\r\n" for n in range(mime.MAX_PARTS + 20))
    content, parts = mime.extract_named(f"From: a@b.c\r\nSubject: s\r\n\r\n{body}".encode())
    assert content.text is None and "MIME parts" in content.reason and parts == ()


# -- the property: whatever the simple reader takes, it reads as the parser -------------------
NAMES = st.sampled_from(
    [
        "From",
        "Subject",
        "Message-ID",
        "Content-Type",
        "content-transfer-encoding",
        "To",
        "X-A",
        "From ",
        "Bad Name",
        "",
        "X-\xe9",
        ">From",
    ]
)
VALUE_CHARS = st.sampled_from(
    list(" \t!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~=?\x00\x0b\r\xe9\x80")
)
LINE_ENDS = st.sampled_from(["\r\n", "\r\n", "\n", "\r", ""])
CONTENT_TYPES = st.sampled_from(
    [
        "text/plain",
        'text/plain; charset="utf-8"',
        "TEXT/PLAIN; charset=iso-8859-1",
        "text/plain; charset=us-ascii; format=flowed; delsp=yes",
        "text/plain; format=flowed",
        "text/plain; charset=x-unknown",
        "text/plain; charset*=utf-8''x",
        "text/plain;\r\n\tcharset=utf-8",
        "text/html",
        "text",
        "application/octet-stream",
        "multipart/mixed; boundary=b",
        'multipart/alternative; boundary="b"',
        "message/rfc822",
        "multipart/mixed",
    ]
)
CTES = st.sampled_from(
    [
        "7bit",
        "8bit",
        "quoted-printable",
        "base64",
        " Base64 ",
        "QUOTED-PRINTABLE",
        "binary",
        "x-uuencode",
        "x-weird",
    ]
)


@st.composite
def header_lines(draw: st.DrawFn) -> str:
    name = draw(NAMES)
    lines = [f"{name}:{draw(st.text(VALUE_CHARS, max_size=12))}"]
    lines += [
        draw(st.sampled_from([" ", "\t"])) + draw(st.text(VALUE_CHARS, max_size=8))
        for _ in range(draw(st.integers(0, 2)))
    ]
    return "".join(line + draw(LINE_ENDS) for line in lines)


@st.composite
def emails(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(header_lines(), max_size=4))
    ctype = draw(st.none() | CONTENT_TYPES)
    cte = draw(st.none() | CTES)
    if ctype is not None:
        headers.insert(draw(st.integers(0, len(headers))), f"Content-Type: {ctype}\r\n")
    if cte is not None:
        headers.insert(draw(st.integers(0, len(headers))), f"Content-Transfer-Encoding: {cte}\n")
    head = "".join(headers).encode("latin-1")
    text = draw(st.text(st.sampled_from(list("ab =-\t>\r\n\x00éœ€.")), max_size=40))
    data = text.encode(draw(st.sampled_from(["utf-8", "cp1252"])), "replace")
    body = draw(
        st.sampled_from(
            [
                data,
                data.replace(b"\n", b"\r\n"),
                quopri.encodestring(data),
                base64.encodebytes(data),
            ]
        )
        | st.binary(max_size=30)
    )
    separator = draw(st.sampled_from([b"\r\n", b"\n", b"\r", b""]))
    return head + separator + body


def check_simple_reader(raw: bytes) -> None:
    message = mime._simple_message(raw)
    event("simple" if message is not None else "parsed")
    if message is None:
        return
    assert_same_message(message, mime._parsed(raw))
    assert mime.extract_named(raw) == mime._read(mime._parsed(raw))


@settings(max_examples=1500, deadline=None)
@given(emails())
def test_simple_reader_reads_built_emails_as_the_parser(raw: bytes) -> None:
    check_simple_reader(raw)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_simple_reader_reads_arbitrary_bytes_as_the_parser(raw: bytes) -> None:
    check_simple_reader(raw)
