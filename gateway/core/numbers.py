"""Recipient numbers: normalisation, format codes (6, 7, 27), number plan (21, 22), magic codes."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import phonenumbers

from gateway.core import codes

# Characters people put inside numbers for readability; removed before any check.
_SEPARATORS = frozenset(".-()[]")
_DOMESTIC = re.compile(r"0[0-9]{9}")
_DIGITS = re.compile(r"[0-9]+")
MAGIC_PREFIX = "06990"  # a magic test number's (magic_code)
_MAGIC = re.compile(MAGIC_PREFIX + r"([0-9]{5})")

MOBILE = "mobile"
UNASSIGNED = "unassigned"
FIXED = "fixed"
FULL_MVNO = "full_mvno"

DEFAULT_PLAN: Mapping[str, str] = MappingProxyType(
    {
        "01": FIXED,
        "02": FIXED,
        "03": FIXED,
        "04": FIXED,
        "05": FIXED,
        "06": MOBILE,
        "07": MOBILE,
        "08": FIXED,
        "09": FIXED,
        # 06000–06009: the routing reserve, never given to a subscriber.
        **{f"0600{d}": UNASSIGNED for d in "0123456789"},
    }
)

_PLAN_CODES: Mapping[str, int | None] = MappingProxyType(
    {
        MOBILE: None,
        UNASSIGNED: codes.NOT_ASSIGNED,
        FIXED: codes.NOT_ASSIGNED,
        FULL_MVNO: codes.FULL_MVNO,
    }
)


def normalise(raw: str) -> str:
    """Strip separators; French international forms (+33, 0033, 33 + 9 digits) become 0….

    A trunk 0 written after the country code ("+33 (0)6 01 02 03 04") is dropped, as
    libphonenumber does, rather than read as the international prefix 00.
    """
    if len(raw) == 10 and raw.isascii() and raw.isdigit() and raw[0] == "0" and raw[1] != "0":
        return raw  # already normal: the common case, hundreds of times per request
    number = "".join(c for c in raw if not c.isspace() and c not in _SEPARATORS)
    for prefix in ("+33", "0033"):
        if number.startswith(prefix):
            return _domestic(number[len(prefix) :])
    if number.startswith("33") and len(number) >= 11 and _DIGITS.fullmatch(number):
        return _domestic(number[2:])
    return number


def _domestic(national: str) -> str:
    return national if national.startswith("0") else "0" + national


def check_format(raw: str, *, international_allowed: bool) -> tuple[int | None, str]:
    """(code, normalised): 6 empty, 27 foreign country not allowed, 7 malformed, None fine.

    An accepted foreign number is returned in E.164 (+CC…); French ones as 0XXXXXXXXX.
    """
    if len(raw) == 10 and raw.isascii() and raw.isdigit() and raw[0] == "0" and raw[1] != "0":
        return None, raw  # a plain French number: what _check_normalised finds, found sooner
    return _check_normalised(normalise(raw), international_allowed=international_allowed)


def _check_normalised(number: str, *, international_allowed: bool) -> tuple[int | None, str]:
    if not number:
        return codes.NUMBER_MISSING, number
    foreign = _foreign_digits(number)
    if foreign is not None:
        e164 = "+" + foreign
        if not international_allowed:
            return codes.COUNTRY_NOT_ALLOWED, e164
        return _check_international(e164)
    if _DOMESTIC.fullmatch(number):
        return None, number
    return codes.NUMBER_NOT_10_DIGITS, number


def _foreign_digits(number: str) -> str | None:
    """The digits after + or 00 (normalise already turned +33/0033 into 0…)."""
    for prefix in ("+", "00"):
        if number.startswith(prefix):
            rest = number[len(prefix) :]
            return rest if _DIGITS.fullmatch(rest) else None
    return None


def _check_international(e164: str) -> tuple[int | None, str]:
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return codes.NUMBER_NOT_10_DIGITS, e164
    if not phonenumbers.is_valid_number(parsed):
        return codes.NUMBER_NOT_10_DIGITS, e164
    return None, phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True, slots=True)
class NumberPlan:
    """The default plan with the overrides merged in (an override replaces the default of the
    same prefix) and the prefix lengths it holds, longest first: each length tried once."""

    kinds: Mapping[str, str]
    lengths: tuple[int, ...]


def number_plan(overrides: Mapping[str, str]) -> NumberPlan:
    """The plan with these overrides: merged once per distinct overrides, not per request."""
    return _merged(tuple(overrides.items()))


@functools.lru_cache(maxsize=16)
def _merged(overrides: tuple[tuple[str, str], ...]) -> NumberPlan:
    kinds = {**DEFAULT_PLAN, **dict(overrides)}
    return NumberPlan(kinds, tuple(sorted({len(p) for p in kinds if p}, reverse=True)))


def plan_code(number: str, overrides: Mapping[str, str]) -> int | None:
    """The number plan's code for a normalised number: 21, 22, or None for a mobile.

    The longest matching prefix wins; at equal length an override beats the default.
    International numbers (+…) and numbers no prefix covers get None.
    """
    return plan_code_in(number, number_plan(overrides))


def plan_code_in(number: str, plan: NumberPlan) -> int | None:
    """`plan_code` with the plan already merged."""
    if number.startswith("+"):
        return None
    kinds, size = plan.kinds, len(number)
    for length in plan.lengths:
        if length > size:
            continue
        prefix = number[:length]
        kind = kinds.get(prefix)
        if kind is not None:
            if kind not in _PLAN_CODES:
                raise ValueError(f"number plan: unknown kind {kind!r} for prefix {prefix!r}")
            return _PLAN_CODES[kind]
    return None


def magic_code(number: str) -> int | None:
    """The code a magic test number asks for: 06990 + an annex code on 5 digits.

    0699000000, and 06990 followed by a code the annex does not list (0699000005), are
    ordinary mobiles: only the provider's own codes can be forced."""
    match = _MAGIC.fullmatch(number) if number.startswith(MAGIC_PREFIX) else None
    if match is None:
        return None
    code = int(match.group(1))
    return code if code != codes.OK and code in codes.MESSAGES else None
