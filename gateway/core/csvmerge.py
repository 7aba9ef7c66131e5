"""The CSV attachments: mobiles.csv and message.csv merged into (number, text) pairs."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence

from gateway.core.envoi import LINE_FEED_MARK
from gateway.core.model import Attachment

MOBILES = "mobiles.csv"
MESSAGE = "message.csv"
SEPARATOR = ";;"
SINGLE_SEPARATOR = ";"

_UTF8_BOM = b"\xef\xbb\xbf"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_PLACEHOLDER = re.compile(r"\[([1-9][0-9]*)\]")
_FIRST_SLICE = 64 * 1024  # characters of mobiles.csv split first (_line_chunks)
_MAX_PLACEHOLDER_DIGITS = 6  # [1234567] and beyond can have no value: no int() of huge digit runs


def decode_attachment(content: bytes) -> str:
    """An attachment's text: UTF-8 (with or without BOM), else windows-1252; LF line ends."""
    return _LINE_BREAK.sub("\n", _decoded(content))


def _decoded(content: bytes) -> str:
    if content.startswith(_UTF8_BOM):
        content = content[len(_UTF8_BOM) :]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("cp1252", "replace")


def merge(
    mobiles: bytes, message: bytes, *, max_lines: int | None = None
) -> list[tuple[str, str]] | None:
    """One (number, text) per line of mobiles.csv; None when the files are not usable (102).

    The document's structure and example separate cells with `;;`, its prose with `;`: a line
    holding `;;` is split on `;;`, any other line on `;`. The merged text follows the body's
    convention, wherever its characters came from: "Ö" stands for a line feed.
    With `max_lines`, reading stops after that many recipients: a caller that passes its
    limit + 1 learns that there are too many without merging a huge file (SPEC §16)."""
    template = next(
        (
            line.strip()
            for lines in _line_chunks(_decoded(message))
            for line in lines
            if line.strip()
        ),
        None,
    )
    if template is None:
        return None
    template = unicodedata.normalize("NFC", template)
    fill = _filler(template)
    text = _decoded(mobiles)
    # An ASCII file has no value to normalise and no "Ö" (its texts keep the template's only).
    plain = text.isascii()
    marked = not plain or LINE_FEED_MARK in template
    recipients: list[tuple[str, str]] = []
    for lines in _line_chunks(text):
        rows = [
            [
                cell.strip()
                for cell in line.split(SEPARATOR if SEPARATOR in line else SINGLE_SEPARATOR)
            ]
            for line in lines
            if line and not line.isspace()  # a blank line is skipped
        ]
        if max_lines is not None:
            del rows[max_lines - len(recipients) :]
        if plain:
            texts = [fill(cells[1:]) for cells in rows]
        else:
            texts = [fill([_nfc(value) for value in cells[1:]]) for cells in rows]
        if marked:
            texts = [filled.replace(LINE_FEED_MARK, "\n") for filled in texts]
        recipients.extend(zip([cells[0] for cells in rows], texts, strict=True))
        if max_lines is not None and len(recipients) >= max_lines:
            break
    return recipients or None


def _nfc(value: str) -> str:
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def _line_chunks(text: str) -> Iterator[list[str]]:
    """The lines (any line end) in lists, split in C from slices of the text that double each
    time (the first 64 KiB: a few thousand lines), so that a merge that stops early reads about
    twice what it used, however long the file (a 500,000-line file for 501 recipients: ~2 ms).
    A slice's last line goes on into the next one; a CR LF cut in two only adds a blank line."""
    start, size, rest = 0, _FIRST_SLICE, ""
    while True:
        end = start + size
        lines = (rest + text[start:end]).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if end >= len(text):
            yield lines
            return
        rest = lines.pop()
        yield lines
        start, size = end, size * 2


def _filler(template: str) -> Callable[[Sequence[str]], str]:
    """The template with each placeholder `[N]` replaced by a line's N-th value ("" when the
    line has fewer), the template turned once for all lines into a format string of
    positional fields (one regex substitution a line, with a call per placeholder, took a
    quarter of a 500-line merge; joining the pieces a line, a fifth)."""
    pieces = _PLACEHOLDER.split(template)  # text, digits, text, digits, …, text
    if len(pieces) == 1:
        return lambda values: template
    texts = [text.replace("{", "{{").replace("}", "}}") for text in pieces[0::2]]
    # Each placeholder's value index; [1234567] and beyond have none (an empty text).
    slots = [int(d) - 1 if len(d) <= _MAX_PLACEHOLDER_DIGITS else -1 for d in pieces[1::2]]
    fields = ["" if slot < 0 else f"{{{slot}}}" for slot in slots]
    by_index = texts[0] + "".join(f + t for f, t in zip(fields, texts[1:], strict=True))
    in_order = texts[0] + "".join("{}" + t for t in texts[1:])  # a field per placeholder
    need = max(slots) + 1  # the values a line needs for every field to have one

    def fill(values: Sequence[str]) -> str:
        if len(values) >= need:
            return by_index.format(*values)
        count = len(values)  # a short line: each placeholder's value picked, "" past its end
        return in_order.format(*[values[slot] if 0 <= slot < count else "" for slot in slots])

    return fill


def find_csv(attachments: Sequence[Attachment]) -> tuple[bytes | None, bytes | None]:
    """The contents of mobiles.csv and message.csv (first of each name), None when absent."""
    mobiles: bytes | None = None
    message: bytes | None = None
    for attachment in attachments:
        name = _basename(attachment.filename)
        if name == MOBILES and mobiles is None:
            mobiles = attachment.content
        elif name == MESSAGE and message is None:
            message = attachment.content
    return mobiles, message


def _basename(filename: str) -> str:
    # Some Windows clients send the whole path: "C:\Users\me\mobiles.csv".
    return re.split(r"[\\/]", filename)[-1].strip().lower()
