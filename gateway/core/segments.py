"""SMS length the operator's way: GSM 03.38 septets or UCS-2 units, parts, the smslong allowance."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from types import MappingProxyType

from gateway.core.model import GSM7, UCS2

# 3GPP TS 23.038 §6.2.1 default alphabet, indexed by its code (16 a row). 0x1B is the
# escape to the extension table, not a character: U+001B in a text is outside GSM.
BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
ESCAPE = 0x1B
# §6.2.1.1 extension table: ESC + code, so each of these costs two septets.
EXTENSION_TABLE: Mapping[int, str] = MappingProxyType(
    {
        0x0A: "\f",
        0x14: "^",
        0x28: "{",
        0x29: "}",
        0x2F: "\\",
        0x3C: "[",
        0x3D: "~",
        0x3E: "]",
        0x40: "|",
        0x65: "€",
    }
)

_EXTENSION = frozenset(EXTENSION_TABLE.values())
_GSM = frozenset(c for code, c in enumerate(BASIC_TABLE) if code != ESCAPE) | _EXTENSION
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")

GSM_SINGLE = 160  # septets in a message sent as one SMS
GSM_PART = 153  # septets per part once the 6-octet concatenation header is there
UCS2_SINGLE = 70  # UTF-16 code units
UCS2_PART = 67
MAX_PARTS = 6  # the most a numeric smslong can allow
UNLIMITED_PARTS = 255  # smslong 999: the concatenation header counts parts in one octet


def septets(text: str) -> int | None:
    """Septets of the NFC-normalised text in GSM 03.38, or None if a character is outside."""
    return _septets(unicodedata.normalize("NFC", text))


def _septets(text: str) -> int | None:
    if not _GSM.issuperset(text):
        return None
    return len(text) + sum(map(text.count, _EXTENSION))


def count(text: str, *, force_ucs2: bool = False) -> tuple[int, str]:
    """(parts, GSM7 or UCS2) for the text after NFC normalisation; empty text is one part.
    `force_ucs2` (the HTTP API's `ucs2=1`) sends even a GSM text in UCS-2."""
    text = unicodedata.normalize("NFC", text)
    gsm = None if force_ucs2 else _septets(text)
    if gsm is not None:
        return _parts(text, gsm, GSM_SINGLE, GSM_PART, _EXTENSION.__contains__), GSM7
    total = len(text) + len(_ASTRAL.findall(text))
    return _parts(text, total, UCS2_SINGLE, UCS2_PART, _is_astral), UCS2


def _is_astral(char: str) -> bool:
    return char > "\uffff"


def _parts(
    text: str, total: int, single: int, per_part: int, is_wide: Callable[[str], bool]
) -> int:
    """Fill parts in order; a two-unit character (escape pair, surrogate pair) is never split."""
    if total <= single:
        return 1
    if total == len(text):
        return math.ceil(total / per_part)
    parts, used = 1, 0
    for char in text:
        cost = 2 if is_wide(char) else 1
        if used + cost > per_part:
            parts += 1
            used = 0
        used += cost
    return parts


def parts_allowed(smslong: str | None) -> int | None:
    """The parts the `smslong` tag allows: absent → 1, n → min(n, 6), 999 → unlimited.

    None means code 34: empty, 0, negative, or not an integer written in ASCII digits
    (a sign, a decimal point or an exponent is refused).
    """
    if smslong is None:
        return 1
    value = smslong.strip()
    if not value.isascii() or not value.isdigit():
        return None
    digits = value.lstrip("0")
    if not digits:
        return None
    if len(digits) > 3:  # 1000 or more; also spares int() a huge string
        return MAX_PARTS
    n = int(digits)
    if n == 999:
        return UNLIMITED_PARTS
    return min(n, MAX_PARTS)
