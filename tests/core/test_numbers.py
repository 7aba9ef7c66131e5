"""Recipient numbers: normalisation, format codes, number plan and magic numbers."""

from __future__ import annotations

import pytest

from gateway.core import codes, numbers
from gateway.core.numbers import DEFAULT_PLAN, check_format, magic_code, normalise, plan_code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0601020304", "0601020304"),
        ("+33 6 01 02 03 04", "0601020304"),
        ("+33601020304", "0601020304"),
        ("0033601020304", "0601020304"),
        ("33601020304", "0601020304"),
        ("06.01.02.03.04", "0601020304"),
        ("06-01-02-03-04", "0601020304"),
        ("(06) 01-02-03-04", "0601020304"),
        ("[06] 01 02 03 04", "0601020304"),
        ("06\u00a001\u00a002\u00a003\u00a004", "0601020304"),
        ("06\u202f01\u202f02\u202f03\u202f04", "0601020304"),
        ("\t0601020304\t", "0601020304"),
        ("+33 (0)6 01 02 03 04", "0601020304"),
        ("0033 (0)6 01 02 03 04", "0601020304"),
        ("+44 7911 123456", "+447911123456"),
        ("0044 7911 123456", "00447911123456"),
        ("3360102030", "3360102030"),  # 10 digits: not the 33… form
        ("0033612345", "0612345"),  # 10 digits, but 0033…: read as its spaced form is
        (" 0033612345", "0612345"),
        ("abc", "abc"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalise_strips_separators_and_french_prefixes(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_a_short_0033_number_gets_one_code_however_it_is_spaced() -> None:
    # 0033 + 6 digits is a French number too short (7), not a foreign one (27).
    for raw in ("0033612345", " 0033612345", "0033 612345"):
        assert check_format(raw, international_allowed=False) == (7, "0612345"), raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0601020304", (None, "0601020304")),
        ("+33 6 01 02 03 04", (None, "0601020304")),
        ("0033601020304", (None, "0601020304")),
        ("33601020304", (None, "0601020304")),
        ("06.01.02.03.04", (None, "0601020304")),
        ("(06) 01-02-03-04", (None, "0601020304")),
        ("0100000000", (None, "0100000000")),  # a format check only: the plan gives 21
    ],
)
def test_check_format_accepts_french_numbers(raw: str, expected: tuple[int | None, str]) -> None:
    assert check_format(raw, international_allowed=False) == expected


@pytest.mark.parametrize("raw", ["", " ", " . - ( ) "])
def test_check_format_empty_is_code_6(raw: str) -> None:
    assert check_format(raw, international_allowed=False) == (codes.NUMBER_MISSING, "")


@pytest.mark.parametrize(
    "raw",
    [
        "060102030",
        "06010203045",
        "6010203045",
        "06O1020304",  # a letter O
        "abcdefghij",
        "+",
        "+33",
        "+33 6 01 02 03",
        "+abc",
        "+33 6 01 02 03 04 05",
        "06010203 4a",
        "٠٦٠١٠٢٠٣٠٤",  # Arabic-Indic digits
        "06 01 02 03 04\u0301",
    ],
)
def test_check_format_malformed_is_code_7(raw: str) -> None:
    code, _ = check_format(raw, international_allowed=False)
    assert code == codes.NUMBER_NOT_10_DIGITS


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+44 7911 123456", "+447911123456"),
        ("0044 7911 123456", "+447911123456"),
        ("+32 470 12 34 56", "+32470123456"),
        ("+1 202 555 0123", "+12025550123"),
        ("+999 1234567", "+9991234567"),  # no such country code: still not +33
        ("0000000000", "+00000000"),  # 00 is the international prefix in France
    ],
)
def test_check_format_foreign_country_is_code_27(raw: str, e164: str) -> None:
    assert check_format(raw, international_allowed=False) == (codes.COUNTRY_NOT_ALLOWED, e164)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+44 7911 123456", "+447911123456"),
        ("0044 7911 123456", "+447911123456"),
        ("+32 470 12 34 56", "+32470123456"),
        ("+1 (202) 555-0123", "+12025550123"),
    ],
)
def test_check_format_foreign_number_accepted_in_e164_when_allowed(raw: str, e164: str) -> None:
    assert check_format(raw, international_allowed=True) == (None, e164)


@pytest.mark.parametrize(
    "raw",
    [
        "+44 12",  # too short for the UK
        "+44 7911 123456 789",  # too long
        "+1 555 555 0123",  # 555 is no NANP area code
        "+999 1234567",  # no such country code
    ],
)
def test_check_format_invalid_foreign_number_is_code_7_when_allowed(raw: str) -> None:
    code, _ = check_format(raw, international_allowed=True)
    assert code == codes.NUMBER_NOT_10_DIGITS


def test_check_format_french_number_stays_national_when_international_allowed() -> None:
    assert check_format("+33 6 01 02 03 04", international_allowed=True) == (None, "0601020304")


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("0601020304", None),
        ("0701020304", None),
        ("0699000000", None),
        ("0600012345", codes.NOT_ASSIGNED),
        ("0600000000", codes.NOT_ASSIGNED),
        ("0600999999", codes.NOT_ASSIGNED),
        ("0601000000", None),  # just past the routing reserve
        ("0610000000", None),
        ("0100000000", codes.NOT_ASSIGNED),
        ("0212345678", codes.NOT_ASSIGNED),
        ("0312345678", codes.NOT_ASSIGNED),
        ("0412345678", codes.NOT_ASSIGNED),
        ("0512345678", codes.NOT_ASSIGNED),
        ("0899123456", codes.NOT_ASSIGNED),
        ("0912345678", codes.NOT_ASSIGNED),
        ("+447911123456", None),
    ],
)
def test_plan_code_default_plan(number: str, expected: int | None) -> None:
    assert plan_code(number, {}) == expected


@pytest.mark.parametrize(
    ("number", "overrides", "expected"),
    [
        ("0612345678", {"0612": "full_mvno"}, codes.FULL_MVNO),
        ("0612345678", {"0612": "full_mvno", "06123": "mobile"}, None),
        ("0612445678", {"0612": "full_mvno", "06123": "mobile"}, codes.FULL_MVNO),
        ("0601020304", {"06": "unassigned"}, codes.NOT_ASSIGNED),  # same length: override wins
        ("0600012345", {"06": "unassigned", "060001": "mobile"}, None),
        ("0600012345", {"0600": "mobile"}, codes.NOT_ASSIGNED),  # 06000 is still longer
        ("0912345678", {"09": "mobile"}, None),
        ("0712345678", {"0712345678": "fixed"}, codes.NOT_ASSIGNED),
        ("0712345679", {"0712345678": "fixed"}, None),
        ("+447911123456", {"+44": "fixed"}, None),
    ],
)
def test_plan_code_longest_prefix_wins_with_overrides(
    number: str, overrides: dict[str, str], expected: int | None
) -> None:
    assert plan_code(number, overrides) == expected


def test_plan_code_number_no_prefix_covers_is_none() -> None:
    assert plan_code("0012345678", {}) is None


def test_plan_code_unknown_kind_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        plan_code("0612345678", {"0612": "satellite"})


def test_default_plan_is_read_only() -> None:
    with pytest.raises(TypeError):
        DEFAULT_PLAN["06"] = "fixed"  # type: ignore[index]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("0699000021", 21),
        ("0699000012", 12),
        ("0699000007", 7),
        ("0699000999", 999),
        ("0699001000", 1000),
        ("0699099999", None),  # 99999 is no annex code: an ordinary mobile
        ("0699000005", None),  # neither is 5
        ("0699000102", 102),
        ("0699000000", None),  # an ordinary mobile
        ("0699100021", None),  # 06991…, not 06990…
        ("0601020304", None),
        ("069900002", None),
        ("06990000211", None),
        ("+33699000021", None),  # only normalised numbers are magic
    ],
)
def test_magic_code(number: str, expected: int | None) -> None:
    assert magic_code(number) == expected


_TRICKY = [
    "0601020304",
    "0712345678",
    "0100000000",
    "0600012345",
    "0699000021",
    "0699000000",
    "0033612345",  # ten digits in 00: the international prefix, not a French number
    "0044791112",
    "06 01 02 03 04",
    " 0601020304",
    "+33601020304",
    "0033601020304",
    "33601020304",
    "+33 (0)6 01 02 03 04",
    "+447911123456",
    "0044 7911 123456",
    "060102030",
    "06010203045",
    "06O1020304",
    "０６０１０２０３０４",  # fullwidth digits: isdigit but not ASCII
    "06\u00a001\u00a002\u00a003\u00a004",
    "",
]


@pytest.mark.parametrize("international_allowed", [False, True])
@pytest.mark.parametrize("raw", _TRICKY)
def test_check_format_fast_path_agrees_with_the_general_path(
    raw: str, international_allowed: bool
) -> None:
    general = numbers._check_normalised(normalise(raw), international_allowed=international_allowed)
    assert check_format(raw, international_allowed=international_allowed) == general


def _plan_code_by_every_length(number: str, overrides: dict[str, str]) -> int | None:
    """The number plan as SPEC §6 words it: every prefix from the longest, override first."""
    if number.startswith("+"):
        return None
    for length in range(len(number), 0, -1):
        kind = overrides.get(number[:length], DEFAULT_PLAN.get(number[:length]))
        if kind is not None:
            return {"mobile": None, "unassigned": 21, "fixed": 21, "full_mvno": 22}[kind]
    return None


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"06": "unassigned"},  # equal length: the override wins
        {"0600": "mobile"},  # shorter than the reserve's 06000…: the reserve still wins
        {"06000": "mobile"},  # equal length with the reserve
        {"0612": "full_mvno", "06123": "mobile"},
        {"0712345678": "fixed", "1": "fixed"},
        {"+44": "fixed", "07123456789": "fixed"},  # longer than any number
    ],
)
@pytest.mark.parametrize(
    "number",
    [
        "0601020304",
        "0600012345",
        "0612345678",
        "0612445678",
        "0712345678",
        "0712345679",
        "0912345678",
        "0012345678",
        "1234",
        "+447911123456",
        "06",
    ],
)
def test_merged_plan_agrees_with_trying_every_prefix(
    number: str, overrides: dict[str, str]
) -> None:
    expected = _plan_code_by_every_length(number, overrides)
    assert plan_code(number, overrides) == expected
    assert numbers.plan_code_in(number, numbers.number_plan(overrides)) == expected
