"""The gateway's clock: real time, or an instant frozen by config or by the API."""

from __future__ import annotations

from datetime import UTC, datetime


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
        if at.tzinfo is None:
            raise ValueError("the clock needs an aware instant (with its UTC offset)")
        self._frozen_at = at.astimezone(UTC)

    def unfreeze(self) -> None:
        self._frozen_at = None
