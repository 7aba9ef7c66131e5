"""SMS parts and encodings counted the operator's way, and the smslong allowance."""

from __future__ import annotations

import unicodedata

import pytest

from gateway.core.model import GSM7, UCS2
from gateway.core.segments import (
    BASIC_TABLE,
    EXTENSION_TABLE,
    count,
    parts_allowed,
    septets,
)
from gateway.core.sender import with_stop

STOP = "STOP SMS au 36111"

# 3GPP TS 23.038 §6.2.1, figure "GSM 7 bit default alphabet", written out by code and
# Unicode name, independently of the module under test.
TS_23_038_BASIC = {
    0x00: "COMMERCIAL AT",
    0x01: "POUND SIGN",
    0x02: "DOLLAR SIGN",
    0x03: "YEN SIGN",
    0x04: "LATIN SMALL LETTER E WITH GRAVE",
    0x05: "LATIN SMALL LETTER E WITH ACUTE",
    0x06: "LATIN SMALL LETTER U WITH GRAVE",
    0x07: "LATIN SMALL LETTER I WITH GRAVE",
    0x08: "LATIN SMALL LETTER O WITH GRAVE",
    0x09: "LATIN CAPITAL LETTER C WITH CEDILLA",
    0x0A: "LINE FEED",
    0x0B: "LATIN CAPITAL LETTER O WITH STROKE",
    0x0C: "LATIN SMALL LETTER O WITH STROKE",
    0x0D: "CARRIAGE RETURN",
    0x0E: "LATIN CAPITAL LETTER A WITH RING ABOVE",
    0x0F: "LATIN SMALL LETTER A WITH RING ABOVE",
    0x10: "GREEK CAPITAL LETTER DELTA",
    0x11: "LOW LINE",
    0x12: "GREEK CAPITAL LETTER PHI",
    0x13: "GREEK CAPITAL LETTER GAMMA",
    0x14: "GREEK CAPITAL LETTER LAMDA",
    0x15: "GREEK CAPITAL LETTER OMEGA",
    0x16: "GREEK CAPITAL LETTER PI",
    0x17: "GREEK CAPITAL LETTER PSI",
    0x18: "GREEK CAPITAL LETTER SIGMA",
    0x19: "GREEK CAPITAL LETTER THETA",
    0x1A: "GREEK CAPITAL LETTER XI",
    0x1B: "ESCAPE",  # escape to the extension table, not a character
    0x1C: "LATIN CAPITAL LETTER AE",
    0x1D: "LATIN SMALL LETTER AE",
    0x1E: "LATIN SMALL LETTER SHARP S",
    0x1F: "LATIN CAPITAL LETTER E WITH ACUTE",
    0x20: "SPACE",
    0x21: "EXCLAMATION MARK",
    0x22: "QUOTATION MARK",
    0x23: "NUMBER SIGN",
    0x24: "CURRENCY SIGN",
    0x25: "PERCENT SIGN",
    0x26: "AMPERSAND",
    0x27: "APOSTROPHE",
    0x28: "LEFT PARENTHESIS",
    0x29: "RIGHT PARENTHESIS",
    0x2A: "ASTERISK",
    0x2B: "PLUS SIGN",
    0x2C: "COMMA",
    0x2D: "HYPHEN-MINUS",
    0x2E: "FULL STOP",
    0x2F: "SOLIDUS",
    0x30: "DIGIT ZERO",
    0x31: "DIGIT ONE",
    0x32: "DIGIT TWO",
    0x33: "DIGIT THREE",
    0x34: "DIGIT FOUR",
    0x35: "DIGIT FIVE",
    0x36: "DIGIT SIX",
    0x37: "DIGIT SEVEN",
    0x38: "DIGIT EIGHT",
    0x39: "DIGIT NINE",
    0x3A: "COLON",
    0x3B: "SEMICOLON",
    0x3C: "LESS-THAN SIGN",
    0x3D: "EQUALS SIGN",
    0x3E: "GREATER-THAN SIGN",
    0x3F: "QUESTION MARK",
    0x40: "INVERTED EXCLAMATION MARK",
    0x41: "LATIN CAPITAL LETTER A",
    0x42: "LATIN CAPITAL LETTER B",
    0x43: "LATIN CAPITAL LETTER C",
    0x44: "LATIN CAPITAL LETTER D",
    0x45: "LATIN CAPITAL LETTER E",
    0x46: "LATIN CAPITAL LETTER F",
    0x47: "LATIN CAPITAL LETTER G",
    0x48: "LATIN CAPITAL LETTER H",
    0x49: "LATIN CAPITAL LETTER I",
    0x4A: "LATIN CAPITAL LETTER J",
    0x4B: "LATIN CAPITAL LETTER K",
    0x4C: "LATIN CAPITAL LETTER L",
    0x4D: "LATIN CAPITAL LETTER M",
    0x4E: "LATIN CAPITAL LETTER N",
    0x4F: "LATIN CAPITAL LETTER O",
    0x50: "LATIN CAPITAL LETTER P",
    0x51: "LATIN CAPITAL LETTER Q",
    0x52: "LATIN CAPITAL LETTER R",
    0x53: "LATIN CAPITAL LETTER S",
    0x54: "LATIN CAPITAL LETTER T",
    0x55: "LATIN CAPITAL LETTER U",
    0x56: "LATIN CAPITAL LETTER V",
    0x57: "LATIN CAPITAL LETTER W",
    0x58: "LATIN CAPITAL LETTER X",
    0x59: "LATIN CAPITAL LETTER Y",
    0x5A: "LATIN CAPITAL LETTER Z",
    0x5B: "LATIN CAPITAL LETTER A WITH DIAERESIS",
    0x5C: "LATIN CAPITAL LETTER O WITH DIAERESIS",
    0x5D: "LATIN CAPITAL LETTER N WITH TILDE",
    0x5E: "LATIN CAPITAL LETTER U WITH DIAERESIS",
    0x5F: "SECTION SIGN",
    0x60: "INVERTED QUESTION MARK",
    0x61: "LATIN SMALL LETTER A",
    0x62: "LATIN SMALL LETTER B",
    0x63: "LATIN SMALL LETTER C",
    0x64: "LATIN SMALL LETTER D",
    0x65: "LATIN SMALL LETTER E",
    0x66: "LATIN SMALL LETTER F",
    0x67: "LATIN SMALL LETTER G",
    0x68: "LATIN SMALL LETTER H",
    0x69: "LATIN SMALL LETTER I",
    0x6A: "LATIN SMALL LETTER J",
    0x6B: "LATIN SMALL LETTER K",
    0x6C: "LATIN SMALL LETTER L",
    0x6D: "LATIN SMALL LETTER M",
    0x6E: "LATIN SMALL LETTER N",
    0x6F: "LATIN SMALL LETTER O",
    0x70: "LATIN SMALL LETTER P",
    0x71: "LATIN SMALL LETTER Q",
    0x72: "LATIN SMALL LETTER R",
    0x73: "LATIN SMALL LETTER S",
    0x74: "LATIN SMALL LETTER T",
    0x75: "LATIN SMALL LETTER U",
    0x76: "LATIN SMALL LETTER V",
    0x77: "LATIN SMALL LETTER W",
    0x78: "LATIN SMALL LETTER X",
    0x79: "LATIN SMALL LETTER Y",
    0x7A: "LATIN SMALL LETTER Z",
    0x7B: "LATIN SMALL LETTER A WITH DIAERESIS",
    0x7C: "LATIN SMALL LETTER O WITH DIAERESIS",
    0x7D: "LATIN SMALL LETTER N WITH TILDE",
    0x7E: "LATIN SMALL LETTER U WITH DIAERESIS",
    0x7F: "LATIN SMALL LETTER A WITH GRAVE",
}

# §6.2.1.1, "GSM 7 bit default alphabet extension table": ESC followed by these codes.
TS_23_038_EXTENSION = {
    0x0A: "FORM FEED",
    0x14: "CIRCUMFLEX ACCENT",
    0x28: "LEFT CURLY BRACKET",
    0x29: "RIGHT CURLY BRACKET",
    0x2F: "REVERSE SOLIDUS",
    0x3C: "LEFT SQUARE BRACKET",
    0x3D: "TILDE",
    0x3E: "RIGHT SQUARE BRACKET",
    0x40: "VERTICAL LINE",
    0x65: "EURO SIGN",
}

ESCAPE_CODE = 0x1B
ONE_SEPTET = {
    unicodedata.lookup(name) for code, name in TS_23_038_BASIC.items() if code != ESCAPE_CODE
}
TWO_SEPTETS = {unicodedata.lookup(name) for name in TS_23_038_EXTENSION.values()}


def test_independent_tables_have_128_and_10_distinct_characters() -> None:
    assert len(TS_23_038_BASIC) == 128 and len(ONE_SEPTET) == 127
    assert len(TWO_SEPTETS) == 10 and not ONE_SEPTET & TWO_SEPTETS


@pytest.mark.parametrize(("code", "name"), sorted(TS_23_038_BASIC.items()))
def test_basic_table_matches_ts_23_038_by_code(code: int, name: str) -> None:
    assert BASIC_TABLE[code] == unicodedata.lookup(name)


def test_basic_table_has_exactly_128_codes() -> None:
    assert len(BASIC_TABLE) == 128


@pytest.mark.parametrize(("code", "name"), sorted(TS_23_038_EXTENSION.items()))
def test_extension_table_matches_ts_23_038_by_code(code: int, name: str) -> None:
    assert EXTENSION_TABLE[code] == unicodedata.lookup(name)


def test_extension_table_has_exactly_10_codes() -> None:
    assert sorted(EXTENSION_TABLE) == sorted(TS_23_038_EXTENSION)


@pytest.mark.parametrize("char", sorted(ONE_SEPTET))
def test_basic_character_is_one_septet(char: str) -> None:
    assert septets(char) == 1


@pytest.mark.parametrize("char", sorted(TWO_SEPTETS))
def test_extension_character_is_two_septets(char: str) -> None:
    assert septets(char) == 2


def test_escape_code_point_is_not_a_gsm_character() -> None:
    assert septets("\x1b") is None
    assert count("\x1b") == (1, UCS2)


def test_no_other_code_point_is_gsm() -> None:
    # Every code point of the BMP (those beyond it are surrogate pairs, never GSM): GSM
    # exactly when its NFC form is made of table characters (U+212B ANGSTROM SIGN is Å).
    wrong = []
    for code_point in range(0x10000):
        char = chr(code_point)
        nfc = unicodedata.normalize("NFC", char)
        if all(c in ONE_SEPTET or c in TWO_SEPTETS for c in nfc):
            expected: int | None = sum(2 if c in TWO_SEPTETS else 1 for c in nfc)
        else:
            expected = None
        if septets(char) != expected:
            wrong.append(f"U+{code_point:04X}")
    assert wrong == []


@pytest.mark.parametrize("char", list("éèàùÇñüäöÄÖÑÜ§¿¡ßÆæØøÅåÉ@£$¥ìòΔ_ΦΓΛΩΠΨΣΘΞ¤\r\n"))
def test_french_and_other_basic_characters_are_gsm(char: str) -> None:
    assert count(char) == (1, GSM7)


@pytest.mark.parametrize("char", list("çêâœ’«»ÈÀÊôîëïû…–`"))
def test_characters_outside_gsm_force_ucs2(char: str) -> None:
    assert count("Bonjour " + char) == (1, UCS2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a", 1),
        ("€", 2),
        ("[", 2),
        ("Prix: 50€ [promo]", 20),
        ("\f", 2),
        ("\r\n" + STOP, 19),
        ("e\u0301", 1),  # NFC: é
        ("ç", None),
        ("Ça coûte", None),
        ("😀", None),
        ("\U0010ffff", None),
    ],
)
def test_septets(text: str, expected: int | None) -> None:
    assert septets(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (1, GSM7)),
        ("a" * 160, (1, GSM7)),
        ("a" * 161, (2, GSM7)),
        ("a" * 306, (2, GSM7)),
        ("a" * 307, (3, GSM7)),
        ("a" * 153 * 6, (6, GSM7)),
        ("a" * (153 * 6 + 1), (7, GSM7)),
        ("€" * 80, (1, GSM7)),
        ("a" * 158 + "€", (1, GSM7)),
        ("a" * 159 + "€", (2, GSM7)),
        ("€" * 80 + "a", (2, GSM7)),
        ("€" * 152, (2, GSM7)),  # 76 escape pairs fill a part (152 septets)
        ("€" * 153, (3, GSM7)),  # 306 septets, yet 3 parts
    ],
)
def test_gsm_parts(text: str, expected: tuple[int, str]) -> None:
    assert count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 152 + 2 + 10 = 164 septets: the € cannot sit astride parts 1 and 2.
        ("a" * 152 + "€" + "a" * 10, (2, GSM7)),
        # 306 septets would fit 2 parts if the escape pair could be split; it cannot.
        ("a" * 152 + "€" + "a" * 152, (3, GSM7)),
        ("a" * 151 + "€" + "a" * 153, (2, GSM7)),
        ("a" * 152 + "[" + "a" * 152, (3, GSM7)),
    ],
)
def test_escape_character_is_never_split_across_parts(text: str, expected: tuple[int, str]) -> None:
    assert count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ç", (1, UCS2)),
        ("ç" * 70, (1, UCS2)),
        ("ç" * 71, (2, UCS2)),
        ("ç" * 134, (2, UCS2)),
        ("ç" * 135, (3, UCS2)),
        ("a" * 69 + "ç", (1, UCS2)),
        ("a" * 70 + "ç", (2, UCS2)),
        ("a" * 159 + "ê", (3, UCS2)),
        ("ç" * 67 * 6, (6, UCS2)),
        ("ç" * (67 * 6 + 1), (7, UCS2)),
    ],
)
def test_ucs2_parts(text: str, expected: tuple[int, str]) -> None:
    assert count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("😀", (1, UCS2)),
        ("😀" * 35, (1, UCS2)),  # 70 UTF-16 code units
        ("ç" * 69 + "😀", (2, UCS2)),  # 71 code units
        ("😀" * 36, (2, UCS2)),
        # 66 + 2 + 66 = 134 code units: the pair cannot sit astride parts 1 and 2.
        ("ç" * 66 + "😀" + "ç" * 66, (3, UCS2)),
        ("ç" * 65 + "😀" + "ç" * 67, (2, UCS2)),
        ("ç" * 67 + "😀" + "ç" * 65, (2, UCS2)),
    ],
)
def test_surrogate_pair_is_never_split_across_parts(text: str, expected: tuple[int, str]) -> None:
    assert count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("e\u0301", (1, GSM7)),
        ("e\u0301" * 160, (1, GSM7)),  # 320 code points, 160 after NFC
        ("A\u030a", (1, GSM7)),  # Å
        ("\u212b", (1, GSM7)),  # ANGSTROM SIGN is Å under NFC
        ("c\u0327", (1, UCS2)),  # ç
        ("ç" * 70 + "e\u0301", (2, UCS2)),
        ("c\u0327" * 70, (1, UCS2)),  # 140 code points, 70 after NFC
    ],
)
def test_text_is_counted_after_nfc(text: str, expected: tuple[int, str]) -> None:
    assert count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 141, (1, GSM7)),
        ("a" * 142, (2, GSM7)),
        ("é" * 141, (1, GSM7)),
        ("a" * 139 + "€", (1, GSM7)),
        ("a" * 140 + "€", (2, GSM7)),
        ("ê" * 51, (1, UCS2)),  # 51 + 19 = 70 code units
        ("ê" * 52, (2, UCS2)),
    ],
)
def test_stop_mention_counts_in_the_length(text: str, expected: tuple[int, str]) -> None:
    assert count(with_stop(text, STOP)) == expected


@pytest.mark.parametrize(
    ("smslong", "expected"),
    [
        (None, 1),
        ("1", 1),
        ("2", 2),
        ("5", 5),
        ("6", 6),
        ("7", 6),
        ("10", 6),
        ("998", 6),
        ("999", 255),
        ("1000", 6),
        ("0999", 255),
        ("02", 2),
        (" 3 ", 3),
        ("\t4\n", 4),
        ("9" * 5000, 6),
    ],
)
def test_parts_allowed(smslong: str | None, expected: int) -> None:
    assert parts_allowed(smslong) == expected


@pytest.mark.parametrize(
    "smslong",
    [
        *("0", "00", "-1", "-999", "", "   "),
        *("2.5", "2.0", "abc", "+2", "1e2", "2 3", "1_0", "0x2"),
        "٢",  # ARABIC-INDIC DIGIT TWO
    ],
)
def test_invalid_smslong_is_none_meaning_code_34(smslong: str) -> None:
    assert parts_allowed(smslong) is None
