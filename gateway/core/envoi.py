"""Reading the `<envoi>` element of a request body: a small, bounded, tolerant scanner."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from types import MappingProxyType

from gateway.core.model import Envoi

# Not an XML parser on purpose: real request bodies hold a bare "&" or "I <3 you", and
# a parser that knows DTDs could be made to expand entities. Tags are ASCII names,
# matched case-insensitively; only the five predefined entities and character
# references are decoded.
_TAGS = re.IGNORECASE | re.ASCII
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_OPEN_ENVOI = re.compile(r"<envoi\s*>", _TAGS)
_CLOSE_ENVOI = re.compile(r"</envoi\s*>", _TAGS)
_CLOSE = re.compile(rf"</({_NAME})\s*>", _TAGS)
# An opening tag, or a comment's start; an opening tag directly followed by text without "<"
# and a closing tag is matched with them (groups: comment, name, "/", text, closing name).
_OPEN_OR_ELEMENT = re.compile(
    rf"<(?:(!--)|({_NAME})\s*(?:(/)>|>(?:([^<]*)</({_NAME})\s*>)?))", _TAGS
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_REFERENCE = re.compile(r"&(?:(amp|lt|gt|quot|apos)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_CDATA_OPEN = "<![CDATA["
_CDATA_CLOSE = "]]>"
LINE_FEED_MARK = "Ö"  # the provider's stand-in for a line break in a message


def parse(
    text: str, *, max_chars: int = 1_000_000, max_tags: int = 2100, max_value_chars: int = 10_000
) -> Envoi:
    """The first `<envoi>…</envoi>` of a body: lower-cased tag -> decoded value; never raises."""
    if len(text) > max_chars:
        return Envoi(found=False, error="body too large")
    inner = _element(text)
    if inner is None:
        return Envoi(found=False)
    fields, errors = _children(inner, max_tags, max_value_chars)
    return Envoi(found=True, fields=MappingProxyType(fields), error="; ".join(errors))


def _element(text: str) -> str | None:
    """The content of the first complete element (from its nearest opening tag)."""
    first = _OPEN_ENVOI.search(text)
    if first is None:
        return None
    close = _CLOSE_ENVOI.search(text, first.end())
    if close is None:
        return None
    start = first.end()
    for reopened in _OPEN_ENVOI.finditer(text, first.end(), close.start()):
        start = reopened.end()
    return text[start : close.start()]


def _children(inner: str, max_tags: int, max_value_chars: int) -> tuple[dict[str, str], list[str]]:
    # An element whose value holds no "<" is read in one match (the first "<" after its
    # opening tag is then its closing tag). Otherwise the opening tag finds its close by a
    # binary search in an index of every closing tag, made once, when first needed: no
    # quadratic scan, however many unclosed "<name>" a body holds.
    closes: dict[str, tuple[list[int], list[int]]] | None = None
    fields: dict[str, str] = {}
    errors: list[str] = []
    count = 0
    position = 0
    comments_close = True
    for match in _OPEN_OR_ELEMENT.finditer(inner):
        start = match.start()
        if start < position:  # inside a value already read
            continue
        comment, name, closed, simple, close_name = match.groups()
        if comment:
            end = inner.find("-->", start + 4) if comments_close else -1
            if end < 0:
                comments_close = False  # no later "<!--" can close either
            else:
                position = end + 3
            continue
        name = name.lower()
        if closed:
            raw, position = "", match.end()
        elif simple is not None and close_name.lower() == name:
            raw, position = simple, match.end()
        else:
            if closes is None:
                closes = _close_index(inner)
            opened = match.start(4) if simple is not None else match.end()
            starts, ends = closes.get(name, ([], []))
            i = bisect_left(starts, opened)
            if i == len(starts):  # a "<" that opens nothing: text, skipped
                continue
            raw, position = inner[opened : starts[i]], ends[i]
        count += 1
        if count > max_tags:
            errors.append("too many tags")
            break
        if name in fields:  # a repeated tag: the first one wins
            continue
        value = _value(raw)
        if len(value) > max_value_chars:
            value = value[:max_value_chars]
            errors.append(f"value of <{name}> cut to {max_value_chars} characters")
        fields[name] = value
    return fields, errors


def _close_index(inner: str) -> dict[str, tuple[list[int], list[int]]]:
    """Every closing tag's start and end, by lower-cased name, in order."""
    closes: dict[str, tuple[list[int], list[int]]] = {}
    for match in _CLOSE.finditer(inner):
        starts, ends = closes.setdefault(match.group(1).lower(), ([], []))
        starts.append(match.start())
        ends.append(match.end())
    return closes


def _value(raw: str) -> str:
    if raw.isascii() and "\n" not in raw and "\r" not in raw and "&" not in raw and "<" not in raw:
        return raw.strip()  # the common value (a number, a keyid): what the rest gives it
    # A raw line break is the mail client's wrapping, not the author's: it and the
    # spaces around it fold to one space. A line feed is written "Ö" (or &#10;).
    folded = " ".join(line for line in (s.strip(" \t") for s in _LINE_BREAK.split(raw)) if line)
    text = _unwrap_cdata(folded.strip())
    return unicodedata.normalize("NFC", text).replace(LINE_FEED_MARK, "\n")


def _unwrap_cdata(raw: str) -> str:
    pieces: list[str] = []
    position = 0
    while (start := raw.find(_CDATA_OPEN, position)) >= 0:
        end = raw.find(_CDATA_CLOSE, start + len(_CDATA_OPEN))
        if end < 0:
            break
        pieces.append(_decode_references(raw[position:start]))
        pieces.append(raw[start + len(_CDATA_OPEN) : end])
        position = end + len(_CDATA_CLOSE)
    pieces.append(_decode_references(raw[position:]))
    return "".join(pieces)


def _decode_references(text: str) -> str:
    if "&" not in text:
        return text
    return _REFERENCE.sub(_reference, text)


def _reference(match: re.Match[str]) -> str:
    entity, decimal, hexadecimal = match.groups()
    if entity:
        return _ENTITIES[entity]
    code = int(decimal) if decimal else int(hexadecimal, 16)
    if _is_xml_char(code):
        return chr(code)
    return match.group(0)  # not a character XML allows: kept as written


def _is_xml_char(code: int) -> bool:
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )
