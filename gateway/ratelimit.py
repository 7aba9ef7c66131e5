"""The rate limit's token buckets: SMS parts per account, in real (monotonic) time, per process."""

from __future__ import annotations

import time

from gateway.core.model import Account


class RateLimiter:
    """A bucket per account holds up to `rate_limit` parts and refills at that rate per second;
    `budget` is what the rules may send now (None: unlimited), `spend` takes it."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}

    def budget(self, account: Account) -> int | None:
        if account.rate_limit <= 0:
            return None
        now = time.monotonic()
        tokens, last = self._buckets.get(account.id, (float(account.rate_limit), now))
        tokens = min(float(account.rate_limit), tokens + (now - last) * account.rate_limit)
        self._buckets[account.id] = (tokens, now)
        return int(tokens)

    def spend(self, account: Account, parts: int) -> None:
        if account.rate_limit > 0 and parts:
            tokens, last = self._buckets[account.id]
            self._buckets[account.id] = (tokens - parts, last)

    def checkpoint(self) -> dict[int, tuple[float, float]]:
        return dict(self._buckets)

    def restore(self, saved: dict[int, tuple[float, float]]) -> None:
        """Give back what a rolled-back batch spent: nothing of it was sent."""
        self._buckets = saved
