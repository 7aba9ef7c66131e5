"""HLR look-ups (SPEC §15 `/hlr`): the operator code of a number, from data by prefix."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.core import numbers

# Illustrative data in the provider's style of codes ("ORAN" is its own example): the
# emulator has no real HLR and numbers are ported, so `[hlr]` in the config overrides any
# prefix; the longest prefix wins.
DEFAULT_OPERATORS: Mapping[str, str] = MappingProxyType(
    {
        "06": "ORAN",
        "07": "ORAN",
        "061": "SFR0",
        "062": "SFR0",
        "065": "BOUY",
        "066": "BOUY",
        "0695": "FREE",
        "0651": "FREE",
        "075": "FREE",
        "076": "BOUY",
        "077": "SFR0",
    }
)
NONE = ""  # no operator: not a mobile, malformed, or no prefix known


def operator(
    tel: str,
    *,
    plan: Mapping[str, str],
    overrides: Mapping[str, str],
    international_allowed: bool = True,
) -> str:
    """The operator code of the number as a client wrote it; "" when it is not a mobile that
    the data covers (malformed, fixed, unassigned per the number plan)."""
    code, number = numbers.check_format(tel, international_allowed=international_allowed)
    if code is not None or numbers.plan_code(number, plan) is not None:
        return NONE
    for length in range(len(number), 0, -1):
        prefix = number[:length]
        found = overrides.get(prefix, DEFAULT_OPERATORS.get(prefix))
        if found is not None:
            return found
    return NONE
