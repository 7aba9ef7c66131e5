"""Reading a raw inbound email: its From address and the text/plain body and attachments."""

from __future__ import annotations

import binascii
import codecs
import dataclasses
import email.parser
import email.policy
import re
from collections.abc import Sequence
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses

from gateway.core.model import Attachment, MailContent

_NOT_TEXT_PLAIN = "only text/plain is processed"
MAX_PARTS = 100  # a request is a text body and two CSV files; real mail adds a few more
_SLACK_LINES = 10  # lines of text that start with "--" too (a signature's "-- ")

# The charsets clients declare for Western European text while actually writing
# windows-1252 (Outlook's € and ’ in an "iso-8859-1" email), by codec name.
_READ_AS_CP1252 = frozenset({"iso8859-1", "cp1252"})

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_ENCODED_WORDS = re.compile(r"(?<=\?=)[ \t]+(?==\?)")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_SURROGATE_ESCAPE = re.compile("[\udc80-\udcff]")
_MAX_FROM_CHARS = 2000
_ADDR_SPEC = r"[^\s\x00-\x1f\x7f<>()@,;:\\\"\[\]]+@[^\s\x00-\x1f\x7f<>()@,;:\\\"\[\]]+"
_VALID_ADDR = re.compile(_ADDR_SPEC)
_SIMPLE_FROM = re.compile(
    rf'(?:(?:\s*"[^"\\]*"\s*|[^"<>()@,;:\\]*)<({_ADDR_SPEC})>|\s*({_ADDR_SPEC}))\s*'
)
# One header as `_simple_message` reads it: a field name, a colon, printable ASCII, then
# folded lines of the same, each line ending CRLF or LF; its name and value as compat32's
# header_source_parse gives them (the value's leading blanks and last line end dropped).
_SIMPLE_HEADER = re.compile(r"([!-9;-~]+):[\t ]*([\t -~]*(?:\r?\n[\t ][\t -~]*)*)\r?\n")
# What starts a header line for the stdlib's parser (email.feedparser.headerRE).
_HEADER_START = re.compile(r"From |[!-9;-~]*:|[\t ]")


def extract(raw: bytes, *, attachments: bool = True) -> MailContent:
    """What the gateway reads in a raw email; never raises, whatever the bytes are.

    `attachments=False` names the attachments without decoding them (their content empty):
    what is read of an email before its sender is authorised (SPEC §16). An email of more
    than MAX_PARTS MIME parts is not processed, and is not parsed beyond its headers."""
    content, parts = extract_named(raw)
    return decoded(content, parts) if attachments else content


def extract_named(raw: bytes) -> tuple[MailContent, tuple[Message, ...]]:
    """The email with its attachments named, not decoded, and their MIME parts, which
    `decoded` reads later without parsing the email again."""
    try:
        if _boundary_lines(raw) > MAX_PARTS + _SLACK_LINES:
            return _too_many_parts(raw), ()
        msg = _simple_message(raw)
        return _read(_parsed(raw) if msg is None else msg)
    except Exception as exc:  # a malformed email is a value, never a crash of the SMTP handler
        reason = f"unreadable email ({type(exc).__name__})"
        return MailContent(from_address="", text=None, reason=reason), ()


def decoded(content: MailContent, parts: Sequence[Message]) -> MailContent:
    """The content with its attachments decoded from their parts (transfer encoding; NUL
    dropped: attachments are only ever read as CSV text, and PostgreSQL refuses NUL)."""
    if not parts:
        return content
    try:
        attachments = tuple(
            Attachment(a.filename, _transfer_decoded(part).replace(b"\x00", b""))
            for a, part in zip(content.attachments, parts, strict=True)
        )
    except Exception:  # never a crash: the files then read as empty (code 102)
        return content
    return dataclasses.replace(content, attachments=attachments)


def _boundary_lines(raw: bytes) -> int:
    """An upper bound of the MIME boundary lines: lines that start with "--"."""
    return raw.count(b"\n--")


def _too_many_parts(raw: bytes) -> MailContent:
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    return MailContent(
        from_address=_from_address(_header(msg, "from")),
        text=None,
        reason=f"more than {MAX_PARTS} MIME parts: not read",
        subject=_decode_encoded_words(_header(msg, "subject")).replace("\x00", "").strip(),
        message_id=_header(msg, "message-id").replace("\x00", "").strip(),
    )


def _parsed(raw: bytes) -> Message:
    """The email as the stdlib's parser reads it (compat32): what `_simple_message` stands
    in for on a simple email."""
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)


def _simple_message(raw: bytes) -> Message | None:
    """The message the stdlib's parser (compat32) makes of a simple email, without its cost;
    None for any other email, which the parser then reads.

    A simple email: every header line is a field name, a colon and printable ASCII, or a
    folded line of printable ASCII, each ending CRLF or LF; the headers end at an empty line
    (CRLF or LF), at the end of the email, or at a line that cannot start a header (which
    the parser takes as the body's first line); the Content-Type is neither multipart/* nor
    message/* (the only types whose body the parser reads as more MIME). The body, any
    bytes, is the payload as is. Anything else (an 8-bit byte or a control character but
    tab in the headers: NUL, a bare CR…; a "From " line; a line with a colon but no field
    name; a header at the very end without its line end; a lone CR as the empty line) goes
    to the parser. Everything after the parse is the same code either way."""
    text = raw.decode("ascii", "surrogateescape")  # as BytesParser does
    msg = Message(policy=email.policy.compat32)
    pos = 0
    while (header := _SIMPLE_HEADER.match(text, pos)) is not None:
        msg.set_raw(header[1], header[2])
        pos = header.end()
    if text.startswith("\r\n", pos):
        pos += 2
    elif text.startswith("\n", pos):
        pos += 1
    elif text.startswith("\r", pos) or _HEADER_START.match(text, pos) is not None:
        return None
    if msg.get_content_maintype() in ("multipart", "message"):
        return None
    msg.set_payload(text[pos:])
    return msg


def _read(msg: Message) -> tuple[MailContent, tuple[Message, ...]]:
    msg = _repaired(msg)
    text, reason, named = _body(msg)
    attachments = tuple(Attachment(filename=name, content=b"") for name, _ in named)
    return MailContent(
        from_address=_from_address(_header(msg, "from")),
        text=text,
        reason=reason,
        attachments=attachments,
        subject=_decode_encoded_words(_header(msg, "subject")).replace("\x00", "").strip(),
        message_id=_header(msg, "message-id").replace("\x00", "").strip(),
    ), tuple(part for _, part in named)


Named = tuple[tuple[str, Message], ...]  # attachments: (filename, MIME part)


def _body(msg: Message) -> tuple[str | None, str, Named]:
    ctype = msg.get_content_type()
    if ctype == "multipart/mixed":
        return _mixed(msg)
    text, reason = _single_body(msg)
    return text, reason, ()


def _single_body(part: Message) -> tuple[str | None, str]:
    """The text of a part that stands for the body, or why it is not processed."""
    ctype = part.get_content_type()
    if ctype == "text/plain":
        return _text_plain(part), ""
    if ctype == "text/html":
        return None, f"html body: {_NOT_TEXT_PLAIN}"
    if ctype == "multipart/alternative":
        return _alternative(part)
    if part.get_content_maintype() == "multipart":
        return None, f"{ctype}: {_NOT_TEXT_PLAIN}"
    return None, f"{ctype} body: {_NOT_TEXT_PLAIN}"


def _alternative(part: Message) -> tuple[str | None, str]:
    # An alternative offering HTML is formatted mail, which the provider refuses; one
    # offering only plain text (a few clients do that) is read as that text.
    children = _children(part)
    if not any(child.get_content_type() == "text/html" for child in children):
        for child in children:
            if child.get_content_type() == "text/plain":
                return _text_plain(child), ""
    return None, f"multipart/alternative: {_NOT_TEXT_PLAIN}"


def _mixed(msg: Message) -> tuple[str | None, str, Named]:
    children = _children(msg)
    body = next((child for child in children if _filename(child) is None), None)
    if body is None:
        return None, f"multipart/mixed without a text body: {_NOT_TEXT_PLAIN}", ()
    text, reason = _single_body(body)
    named: list[tuple[str, Message]] = []
    for child in children:
        name = _filename(child)
        if child is body or name is None or child.is_multipart():
            continue
        named.append((name, child))
    return text, reason, tuple(named)


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if not isinstance(payload, list):  # a multipart without a usable boundary
        return []
    return [_repaired(child) for child in payload if isinstance(child, Message)]


def _repaired(part: Message) -> Message:
    """The part with 8-bit header values made text, so that parameters read right."""
    items = list(part.raw_items())
    if any(_has_8bit(value) for _, value in items):
        for name in {name for name, _ in items}:
            del part[name]
        for name, value in items:
            part[name] = _unescape_8bit(value)
    return part


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # a parameter the stdlib cannot unquote: no usable name
        return None
    if not isinstance(name, str):
        return None
    name = _decode_encoded_words(_unescape_8bit(name)).strip()
    return name or None


def _transfer_decoded(part: Message) -> bytes:
    cte = part.get("content-transfer-encoding")
    if cte is not None:
        # The stdlib only recognises an exact lower-case value ("base64", not "Base64 ").
        canonical = str(cte).strip().lower()
        if canonical != str(cte):
            part.replace_header("content-transfer-encoding", canonical)
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _text_plain(part: Message) -> str:
    params = _content_type_params(part)
    text = decode_bytes(_transfer_decoded(part), params.get("charset"))
    # NUL has no place in mail text (RFC 5322) and PostgreSQL cannot store it in text.
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if params.get("format", "").lower() == "flowed":
        text = unflow(text, delsp=params.get("delsp", "").lower() == "yes")
    return text


def _content_type_params(part: Message) -> dict[str, str]:
    # Read once: each get_param() parses the whole header again.
    params: dict[str, str] = {}
    for name, value in part.get_params(failobj=[])[1:]:
        params.setdefault(name.lower(), collapse_rfc2231_value(value).strip())
    return params


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared (or undeclared: None) charset as text; never raises."""
    codec = _codec_name(charset)
    if codec in _READ_AS_CP1252:
        return data.decode("cp1252", "replace")
    if codec is None or codec == "ascii":
        # Undeclared, unknown or "us-ascii" with 8-bit bytes: mail clients mean UTF-8
        # nowadays, and windows-1252 before that.
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", "replace")
    try:
        return data.decode(codec, "replace")
    except (LookupError, UnicodeError, ValueError):  # a non-text codec, e.g. "base64"
        return data.decode("cp1252", "replace")


def _codec_name(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset.strip().strip('"')).name
    except (LookupError, ValueError):
        return None


def unflow(text: str, *, delsp: bool) -> str:
    """Undo RFC 3676 format=flowed: join soft-broken lines (text uses LF line ends)."""
    body, final_line_end = (text[:-1], "\n") if text.endswith("\n") else (text, "")
    out: list[str] = []
    pieces: list[str] = []  # the flowed lines of the paragraph being joined
    depth = 0
    for line in body.split("\n"):
        line_depth = len(line) - len(line.lstrip(">"))
        content = line[line_depth:]
        if content.startswith(" "):  # space-stuffing
            content = content[1:]
        if pieces and line_depth != depth:  # a flowed line never joins another quote depth
            out.append(_quoted("".join(pieces), depth))
            pieces = []
        depth = line_depth
        if content.endswith(" ") and content != "-- ":  # flowed; "-- " is the signature mark
            pieces.append(content[:-1] if delsp else content)
        else:
            pieces.append(content)
            out.append(_quoted("".join(pieces), depth))
            pieces = []
    if pieces:
        out.append(_quoted("".join(pieces), depth))
    return "\n".join(out) + final_line_end


def _quoted(line: str, depth: int) -> str:
    return ">" * depth + " " + line if depth else line


def _header(msg: Message, name: str) -> str:
    """The first header of that name as text, unfolded ("" when absent)."""
    for key, value in msg.raw_items():
        if key.lower() == name and isinstance(value, str):
            return _FOLD.sub("", _unescape_8bit(value))
    return ""


def _unescape_8bit(value: str) -> str:
    # The parser keeps raw 8-bit header bytes as surrogate escapes; a header written
    # in 8-bit by a careless client is UTF-8, else windows-1252.
    if not _has_8bit(value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"), None)


def _has_8bit(value: str) -> bool:
    return not value.isascii() and _SURROGATE_ESCAPE.search(value) is not None


def _decode_encoded_words(value: str) -> str:
    """RFC 2047 encoded words decoded; a malformed one stays as written."""
    value = _BETWEEN_ENCODED_WORDS.sub("", value)
    return _ENCODED_WORD.sub(_decode_encoded_word, value)


def _decode_encoded_word(match: re.Match[str]) -> str:
    charset, encoding, payload = match.groups()
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*fr
    try:
        if encoding in "bB":
            data = binascii.a2b_base64(payload + "=" * (-len(payload) % 4), strict_mode=True)
        else:
            data = binascii.a2b_qp(payload.encode("ascii"), header=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return decode_bytes(data, charset)


def _from_address(value: str) -> str:
    # Parsed before any encoded word is decoded, so that a display name can never pose
    # as the address the authorisation reads; an ambiguous header (two addresses,
    # "a@trusted.example <b@other.example>") reads as no address at all.
    if len(value) > _MAX_FROM_CHARS:  # no real From is that long; the parser is slow on it
        return ""
    simple = _SIMPLE_FROM.fullmatch(value)
    if simple is not None:  # the usual shapes, without the full RFC 5322 parser's cost
        return (simple.group(1) or simple.group(2)).lower()
    found = [addr.strip() for _, addr in getaddresses([value]) if "@" in addr]
    if len(found) != 1 or _VALID_ADDR.fullmatch(found[0]) is None:
        return ""
    return found[0].lower()
