"""The CSV attachments: decoding, finding them by name, merging mobiles.csv with message.csv."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import csvmerge
from gateway.core.csvmerge import decode_attachment, find_csv, merge
from gateway.core.mime import extract
from gateway.core.model import Attachment

MAIL = Path(__file__).parent.parent / "fixtures" / "mail"

DOC_MOBILES = b"0601020304;;Michel;;Martin;;10/10/2015\n0601020305;;Sarah;;Dupont;;02/08/2015\n"
DOC_MESSAGE = b"Bonjour [1] [2], votre nouvelle carte sera disponible le [3]\n"
DOC_MERGED = [
    ("0601020304", "Bonjour Michel Martin, votre nouvelle carte sera disponible le 10/10/2015"),
    ("0601020305", "Bonjour Sarah Dupont, votre nouvelle carte sera disponible le 02/08/2015"),
]


# -- the document's examples ----------------------------------------------------------------


def test_document_example_with_dynamic_data() -> None:
    assert merge(DOC_MOBILES, DOC_MESSAGE) == DOC_MERGED


def test_document_example_without_dynamic_data() -> None:
    assert merge(b"0601020304\n", b"Bonjour, votre nouvelle carte est disponible\n") == [
        ("0601020304", "Bonjour, votre nouvelle carte est disponible")
    ]


@pytest.mark.parametrize(
    ("name", "merged"),
    [
        ("thunderbird_csv_rfc2231.eml", DOC_MERGED),
        (
            "outlook_csv_rfc2047.eml",
            [
                (
                    "0601020304",
                    "Bonjour Hélène Lefèvre, votre nouvelle carte sera disponible le "
                    "10/10/2015 – à bientôt",
                ),
                (
                    "0601020305",
                    "Bonjour Zoé Dupont, votre nouvelle carte sera disponible le "
                    "02/08/2015 – à bientôt",
                ),
            ],
        ),
    ],
)
def test_client_email_attachments_merge(name: str, merged: list[tuple[str, str]]) -> None:
    mobiles, message = find_csv(extract((MAIL / name).read_bytes()).attachments)
    assert mobiles is not None
    assert message is not None
    assert merge(mobiles, message) == merged


# -- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("Hélène;;50€".encode(), "Hélène;;50€"),
        (b"\xef\xbb\xbf" + "Hélène".encode(), "Hélène"),
        ("Hélène;;50€’".encode("cp1252"), "Hélène;;50€’"),
        (b"\xef\xbb\xbfH\xe9l\xe8ne", "Hélène"),  # a BOM, then windows-1252 after all
        (b"\x81\x8d", "\ufffd\ufffd"),
        (b"", ""),
    ],
    ids=["utf-8", "utf-8-bom", "windows-1252", "bom-then-windows-1252", "undecodable", "empty"],
)
def test_attachment_is_utf8_else_windows_1252(content: bytes, text: str) -> None:
    assert decode_attachment(content) == text


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (b"a\r\nb\r\n", "a\nb\n"),
        (b"a\nb\n", "a\nb\n"),
        (b"a\rb\r", "a\nb\n"),
        (b"a\r\n\rb\n", "a\n\nb\n"),
    ],
    ids=["crlf", "lf", "cr", "mixed"],
)
def test_attachment_line_ends_become_lf(content: bytes, text: str) -> None:
    assert decode_attachment(content) == text


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr"])
def test_merge_reads_any_line_end(line_end: bytes) -> None:
    mobiles = DOC_MOBILES.replace(b"\n", line_end)
    assert merge(mobiles, DOC_MESSAGE.replace(b"\n", line_end)) == DOC_MERGED


def test_merge_reads_windows_1252_files() -> None:
    mobiles = "0601020304;;Hélène\r\n".encode("cp1252")
    message = "Bonjour [1], 50€ offerts\r\n".encode("cp1252")
    assert merge(mobiles, message) == [("0601020304", "Bonjour Hélène, 50€ offerts")]


def test_merge_reads_utf8_files_with_bom() -> None:
    mobiles = b"\xef\xbb\xbf" + "0601020304;;Hélène\n".encode()
    message = b"\xef\xbb\xbf" + b"Bonjour [1]\n"
    assert merge(mobiles, message) == [("0601020304", "Bonjour Hélène")]


def test_a_line_without_double_separator_is_split_on_the_single_one() -> None:
    # The document's prose says ";", its structure and example ";;": both are read.
    merged = merge(b"0601020304;Michel;Martin\n0601020305;;Sarah;;Dupont\n", DOC_MESSAGE)
    assert merged == [
        ("0601020304", "Bonjour Michel Martin, votre nouvelle carte sera disponible le "),
        ("0601020305", "Bonjour Sarah Dupont, votre nouvelle carte sera disponible le "),
    ]


def test_a_double_separator_line_keeps_single_semicolons_in_its_values() -> None:
    assert merge(b"0601020304;;Martin; Michel\n", b"Bonjour [1]\n") == [
        ("0601020304", "Bonjour Martin; Michel")
    ]


def test_o_umlaut_in_a_mobiles_value_is_a_line_feed_like_everywhere_in_the_message() -> None:
    assert merge("0601020304;;MichelÖMartin\n".encode(), b"Bonjour [1]\n") == [
        ("0601020304", "Bonjour Michel\nMartin")
    ]


# -- the message ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (b"Bonjour [1]\nligne 2 ignoree [1]\n", "Bonjour Michel"),
        (b"\n\n  \nBonjour [1]\n", "Bonjour Michel"),
        (b"  Bonjour [1]  \n", "Bonjour Michel"),
        (b"Bonjour [1]", "Bonjour Michel"),
        ("Bonjour [1]ÖA bientôt".encode(), "Bonjour Michel\nA bientôt"),
        ("O\u0308k [1]".encode(), "\nk Michel"),
    ],
    ids=["first-line", "first-non-blank-line", "trimmed", "no-line-end", "o-umlaut", "nfc"],
)
def test_message_is_the_first_non_blank_line(message: bytes, text: str) -> None:
    assert merge(b"0601020304;;Michel\n", message) == [("0601020304", text)]


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (b"[1] [2]", "a b"),
        (b"[2][1][2]", "bab"),
        (b"[3]", ""),
        (b"<[12]>", "<>"),
        (b"[99999999999999999999]x", "x"),
        (b"[0] [01] [] [a] [-1] [ 1]", "[0] [01] [] [a] [-1] [ 1]"),
        (b"[[1]]", "[a]"),
        (b"no placeholder", "no placeholder"),
    ],
)
def test_placeholders_are_replaced_by_the_line_values(message: bytes, text: str) -> None:
    assert merge(b"0601020304;;a;;b\n", message) == [("0601020304", text)]


def test_placeholder_without_any_value_is_empty() -> None:
    assert merge(b"0601020304\n", b"Bonjour [1] [2]!") == [("0601020304", "Bonjour  !")]


def test_values_are_not_themselves_expanded() -> None:
    assert merge(b"0601020304;;[2];;b\n", b"[1]") == [("0601020304", "[2]")]


# -- mobiles.csv ----------------------------------------------------------------------------


def test_blank_mobile_lines_are_skipped() -> None:
    mobiles = b"\n0601020304;;a\n\n   \n\t\n0601020305;;b\n\n"
    assert merge(mobiles, b"[1]") == [("0601020304", "a"), ("0601020305", "b")]


@pytest.mark.parametrize(
    ("line", "recipient"),
    [
        (b" 0601020304 ;; Michel ;;Martin ", ("0601020304", "Michel Martin")),
        (b"06 01 02 03 04;;Michel;;Martin", ("06 01 02 03 04", "Michel Martin")),
        (b"0601020304;Michel;;Martin", ("0601020304;Michel", "Martin ")),
        (b"0601020304;;;Michel;;Martin", ("0601020304", ";Michel Martin")),
        (b"0601020304;;;;Martin", ("0601020304", " Martin")),
        (b";;Michel;;Martin", ("", "Michel Martin")),
        (b"0601020304;;Michel;;Martin;;", ("0601020304", "Michel Martin")),
    ],
    ids=[
        "trimmed",
        "number-as-written",
        "single-semicolon",
        "odd-semicolons",
        "empty-value",
        "empty-number",
        "trailing-separator",
    ],
)
def test_mobile_line_is_split_on_double_semicolons(line: bytes, recipient: tuple[str, str]) -> None:
    assert merge(line + b"\n", b"[1] [2]") == [recipient]


def test_recipients_keep_the_file_order_and_repeats() -> None:
    mobiles = b"0601020305;;b\n0601020304;;a\n0601020305;;c\n"
    assert merge(mobiles, b"[1]") == [("0601020305", "b"), ("0601020304", "a"), ("0601020305", "c")]


@pytest.mark.parametrize(
    ("mobiles", "message"),
    [
        (b"", DOC_MESSAGE),
        (b"\n\r\n  \n", DOC_MESSAGE),
        (DOC_MOBILES, b""),
        (DOC_MOBILES, b"\r\n \r\n\t\n"),
        (b"", b""),
    ],
    ids=["no-mobiles", "blank-mobiles", "no-message", "blank-message", "both-empty"],
)
def test_unusable_files_give_none(mobiles: bytes, message: bytes) -> None:
    assert merge(mobiles, message) is None


def test_merge_has_no_recipient_limit_of_its_own() -> None:
    mobiles = b"".join(b"06%08d\n" % i for i in range(600))
    merged = merge(mobiles, b"x")
    assert merged is not None
    assert len(merged) == 600


# -- finding the files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        ("mobiles.csv", "message.csv"),
        ("MOBILES.CSV", "Message.Csv"),
        ("  mobiles.csv ", "\tmessage.csv\n"),
        ("C:\\Users\\jean\\mobiles.csv", "/home/jean/message.csv"),
    ],
)
def test_csv_files_are_found_by_name(names: tuple[str, str]) -> None:
    attachments = [
        Attachment("logo.png", b"png"),
        Attachment(names[1], b"message"),
        Attachment(names[0], b"mobiles"),
    ]
    assert find_csv(attachments) == (b"mobiles", b"message")


@pytest.mark.parametrize(
    ("names", "found"),
    [
        ((), (None, None)),
        (("mobiles.csv",), (b"0", None)),
        (("message.csv",), (None, b"0")),
        (("mobile.csv", "messages.csv", "mobiles.csv.txt", "mobiles.txt"), (None, None)),
    ],
)
def test_missing_csv_file_is_none(
    names: tuple[str, ...], found: tuple[bytes | None, bytes | None]
) -> None:
    assert find_csv([Attachment(name, b"0") for name in names]) == found


def test_first_of_two_files_with_the_same_name_wins() -> None:
    attachments = [
        Attachment("mobiles.csv", b"first"),
        Attachment("Mobiles.csv", b"second"),
        Attachment("message.csv", b"m1"),
        Attachment("message.csv", b"m2"),
    ]
    assert find_csv(attachments) == (b"first", b"m1")


# -- property: any well-formed pair of files merges back to its rows ------------------------

NUMBERS = st.from_regex(r"(\+33|0)[1-9][0-9]{8}", fullmatch=True)
VALUES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="[;\r\n"),
    max_size=12,
).map(str.strip)
ROWS = st.lists(st.tuples(NUMBERS, st.lists(VALUES, max_size=4)), min_size=1, max_size=500)


@settings(max_examples=40, deadline=None)
@given(
    rows=ROWS,
    template=st.sampled_from(["Bonjour [1] [2], le [3]", "[4][1]", "sans variable", "[1]Ö[5]"]),
    line_end=st.sampled_from(["\n", "\r\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
)
def test_any_csv_merges_to_its_recipients_and_texts(
    rows: list[tuple[str, list[str]]], template: str, line_end: str, encoding: str
) -> None:
    mobiles = "".join(";;".join([num, *values]) + line_end for num, values in rows)
    merged = merge(mobiles.encode(encoding), (template + line_end).encode(encoding))
    expected = [(num, expand(template, values)) for num, values in rows]
    assert merged == expected


def expand(template: str, values: list[str]) -> str:
    text = template
    for index in range(5, 0, -1):
        value = values[index - 1] if index <= len(values) else ""
        text = text.replace(f"[{index}]", unicodedata.normalize("NFC", value))
    return text.replace("Ö", "\n")


def test_merge_reads_no_further_than_max_lines() -> None:
    mobiles = b"".join(b"06%08d;;v\n" % i for i in range(1000)) + b"\xff not utf-8 at the end"
    merged = merge(mobiles, b"[1]\n", max_lines=3)
    assert merged == [("0600000000", "v"), ("0600000001", "v"), ("0600000002", "v")]


def _reference_fill(template: str, values: list[str]) -> str:
    """The merge's placeholder rule as one regex substitution (what csvmerge did a line)."""

    def value(match: re.Match[str]) -> str:
        digits = match.group(1)
        if len(digits) > 6:
            return ""
        index = int(digits)
        return values[index - 1] if index <= len(values) else ""

    return re.sub(r"\[([1-9][0-9]*)\]", value, template)


TEMPLATE_BITS = st.sampled_from(["[1]", "[2]", "[10]", "[0]", "[01]", "[1234567]", "[999999]"])
TEMPLATE_TEXT = st.text(alphabet="ab[]1 ;Ö{}", max_size=6)


@given(
    st.lists(TEMPLATE_BITS | TEMPLATE_TEXT, max_size=8).map("".join),
    st.lists(st.text(alphabet="xy[1]é{}", max_size=4), max_size=12),
)
def test_the_template_is_filled_as_one_substitution_would(template: str, values: list[str]) -> None:
    assert csvmerge._filler(template)(values) == _reference_fill(template, values)


def test_braces_are_text_in_the_template_and_in_the_values() -> None:
    merged = merge(b"0601020304;;{0}\n0601020305\n", b"{x} [1] {1}}\n")
    assert merged == [("0601020304", "{x} {0} {1}}"), ("0601020305", "{x}  {1}}")]


def _reference_merge(mobiles: str, template: str, max_lines: int | None) -> list[tuple[str, str]]:
    """The merge's rules a line at a time, as the document reads (what csvmerge did)."""
    fill = csvmerge._filler(unicodedata.normalize("NFC", template))
    merged: list[tuple[str, str]] = []
    for line in re.split(r"\r\n|\r|\n", mobiles):
        if max_lines is not None and len(merged) >= max_lines:
            break
        if not line.strip():
            continue
        num, *values = (cell.strip() for cell in line.split(";;" if ";;" in line else ";"))
        text = fill([unicodedata.normalize("NFC", v) for v in values])
        merged.append((num, text.replace("Ö", "\n")))
    return merged


@settings(max_examples=300, deadline=None)
@given(
    mobiles=st.text(alphabet="06;; \t\r\nxÖe\u0301{}", max_size=120),
    template=st.sampled_from(["[1]-[2]", "Ö[1]", "sans", "{[3]}", "[1][1234567]"]),
    max_lines=st.none() | st.integers(0, 6),
    first_slice=st.sampled_from([1, 2, 3, 5, 8, csvmerge._FIRST_SLICE]),
)
def test_any_file_merges_as_a_line_at_a_time_would(
    mobiles: str, template: str, max_lines: int | None, first_slice: int
) -> None:
    """Whatever the size of the slices the lines are split from (a CR LF cut in two too)."""
    with mock.patch.object(csvmerge, "_FIRST_SLICE", first_slice):
        merged = merge(mobiles.encode(), template.encode(), max_lines=max_lines)
    assert merged == (_reference_merge(mobiles, template, max_lines) or None)


def test_a_huge_file_is_split_no_further_than_twice_what_the_limit_needs() -> None:
    split: list[int] = []
    chunks = csvmerge._line_chunks

    def spy(text: str) -> Iterator[list[str]]:
        for lines in chunks(text):
            split.append(len(lines))
            yield lines

    mobiles = b"".join(b"06%08d;;v\r\n" for i in range(500_000))
    with mock.patch.object(csvmerge, "_line_chunks", spy):
        merged = merge(mobiles, b"[1]\n", max_lines=501)
    assert merged is not None and len(merged) == 501
    assert sum(split) < 2 * csvmerge._FIRST_SLICE // 14  # 64 KiB of 14-character lines
