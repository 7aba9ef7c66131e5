"""HLR look-ups: operator codes by prefix, overrides, numbers that are not mobiles."""

from __future__ import annotations

import pytest

from gateway.core.hlr import operator


@pytest.mark.parametrize(
    ("tel", "overrides", "expected"),
    [
        ("0680010203", {}, "ORAN"),  # the provider's own example
        ("06 80 01 02 03", {}, "ORAN"),
        ("+33680010203", {}, "ORAN"),
        ("0612345678", {}, "SFR0"),
        ("0695123456", {}, "FREE"),
        ("0680010203", {"068": "TEST"}, "TEST"),
        ("0680010203", {"06800": "LONG", "068": "SHORT"}, "LONG"),
        ("0102030405", {}, ""),  # a fixed line
        ("0600012345", {}, ""),  # the routing reserve: unassigned
        ("06", {}, ""),  # malformed
        ("+447911123456", {}, ""),  # foreign, no data
        ("+447911123456", {"+44": "UKOP"}, "UKOP"),
    ],
)
def test_operator_by_longest_prefix(tel: str, overrides: dict[str, str], expected: str) -> None:
    assert operator(tel, plan={}, overrides=overrides) == expected


def test_number_plan_overrides_apply_first() -> None:
    assert operator("0680010203", plan={"0680": "fixed"}, overrides={}) == ""
