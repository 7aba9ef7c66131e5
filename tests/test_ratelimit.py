"""The per-process rate limiter."""

from __future__ import annotations

from gateway.core.model import Account
from gateway.ratelimit import RateLimiter

LIMITED = Account(id=1, keyid="k", rate_limit=5)


def test_unlimited_account_has_no_budget() -> None:
    assert RateLimiter().budget(Account(id=2, keyid="u")) is None


def test_spending_lowers_the_budget() -> None:
    limiter = RateLimiter()
    assert limiter.budget(LIMITED) == 5
    limiter.spend(LIMITED, 4)
    assert limiter.budget(LIMITED) in (1, 2)  # at most a token refilled meanwhile


def test_a_rolled_back_batch_gives_its_tokens_back() -> None:
    limiter = RateLimiter()
    limiter.budget(LIMITED)
    saved = limiter.checkpoint()
    limiter.spend(LIMITED, 5)
    limiter.restore(saved)
    assert limiter.budget(LIMITED) == 5
