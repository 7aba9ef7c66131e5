"""The gateway's clock: real time, or an instant frozen by config or by the API."""

from __future__ import annotations

from datetime import UTC, datetime

# The instants the clock may be frozen at: every stored time then has a 4-digit year, and
# 9999's last day stays free so that local times (up to UTC+14) are still in year 9999.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, tzinfo=UTC)
RANGE = f"between {EARLIEST:%Y-%m-%dT%H:%M:%SZ} and {LATEST:%Y-%m-%dT%H:%M:%SZ}"


class Clock:
    """Every time the gateway records or judges comes from here, never from datetime.now()."""

    def __init__(self, frozen_at: datetime | None = None) -> None:
        self._frozen_at: datetime | None = None
        if frozen_at is not None:
            self.freeze(frozen_at)

    @property
    def frozen_at(self) -> datetime | None:
        return self._frozen_at

    def now(self) -> datetime:
        return self._frozen_at if self._frozen_at is not None else datetime.now(UTC)

    def freeze(self, at: datetime) -> None:
        self._frozen_at = in_range(at)

    def unfreeze(self) -> None:
        self._frozen_at = None


def in_range(at: datetime) -> datetime:
    """`at` in UTC; a ValueError when it has no offset or is outside EARLIEST…LATEST."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the clock needs an aware instant (with its UTC offset)")
    try:
        utc = at.astimezone(UTC)
    except OverflowError:  # beyond year 1 or 9999 once in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"{at.isoformat()} is outside the clock's range: {RANGE}")
    return utc
