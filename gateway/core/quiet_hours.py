"""When commercial SMS may not be sent (code 24): 20h–8h, Sundays, French public holidays."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

PARIS = ZoneInfo("Europe/Paris")
OPENS = 8  # first local hour when sending is allowed
CLOSES = 20  # first local hour when it no longer is
SUNDAY = 6
# The `holidays` package's Moselle subdivision; Bas-Rhin and Haut-Rhin ("6AE") keep the
# same two extra days, Good Friday and 26 December.
ALSACE_MOSELLE = "57"


def is_quiet(now: datetime, *, alsace_moselle: bool = False) -> bool:
    """True when `now` (an aware instant) falls in the quiet hours in Europe/Paris time."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{now.isoformat()} has no UTC offset; quiet hours need an instant")
    local = now.astimezone(PARIS)
    if local.hour < OPENS or local.hour >= CLOSES or local.weekday() == SUNDAY:
        return True
    return local.date() in public_holidays(local.year, alsace_moselle=alsace_moselle)


@lru_cache(maxsize=64)
def public_holidays(year: int, *, alsace_moselle: bool = False) -> frozenset[date]:
    """France's national public holidays of a year, plus Alsace-Moselle's if asked."""
    subdiv = ALSACE_MOSELLE if alsace_moselle else None
    return frozenset(holidays.country_holidays("FR", subdiv=subdiv, years=year))
