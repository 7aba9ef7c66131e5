"""In-process change notifications: long-polling and live page updates wake on them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


class Changes:
    """A version counter per topic ("sms", "emails", "replies", "accounts", "clock") and a
    wake-up.

    The writer publishes what it commits; the web side's poller publishes what other replicas
    commit (gateway/web/live.py), so that a waiter never queries the database to find out."""

    TOPICS = ("sms", "emails", "replies", "accounts", "clock")

    def __init__(self) -> None:
        self.versions: dict[str, int] = dict.fromkeys(self.TOPICS, 0)
        self._event = asyncio.Event()

    def publish(self, topics: Iterable[str]) -> None:
        for topic in topics:
            self.versions[topic] = self.versions.get(topic, 0) + 1
        self.wake()

    def wake(self) -> None:
        """Wake every waiter (they look at the versions, or at why they were woken)."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait for the next wake-up; False on timeout."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        return False
