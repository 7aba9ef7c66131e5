"""In-process change notifications: long-polling and live page updates wake on them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


class Changes:
    """A version counter per topic ("sms", "emails", "replies", "accounts", "clock") and a
    wake-up."""

    TOPICS = ("sms", "emails", "replies", "accounts", "clock")

    def __init__(self) -> None:
        self.versions: dict[str, int] = dict.fromkeys(self.TOPICS, 0)
        self._event = asyncio.Event()

    def publish(self, topics: Iterable[str]) -> None:
        for topic in topics:
            self.versions[topic] = self.versions.get(topic, 0) + 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait for the next change; False on timeout. Other replicas' changes are not seen,
        so callers re-check the database after each wake-up or timeout slice."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
            return True
        return False
