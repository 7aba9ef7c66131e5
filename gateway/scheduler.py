"""Deferred sends (HTTP `date_envoi`): scheduled SMS become sent when the gateway's clock
reaches their due time — a frozen clock moved past it included."""

from __future__ import annotations

import asyncio
import logging

from gateway.clock import Clock
from gateway.events import Changes
from gateway.store.engine import Database
from gateway.store.provider import release_due

log = logging.getLogger("mail2sms.scheduler")

POLL = 0.5  # seconds: a moved clock or a due time is honoured within this delay


class Scheduler:
    def __init__(self, engine: Database, clock: Clock, changes: Changes) -> None:
        self._engine = engine
        self._clock = clock
        self._changes = changes

    async def release(self) -> int:
        released = await release_due(self._engine, self._clock.now())
        if released:
            self._changes.publish(["sms"])
        return released

    async def run(self) -> None:
        """Release until cancelled; a failing round is logged and the loop goes on."""
        while True:
            try:
                await self.release()
            except Exception:
                log.exception("scheduler: releasing due SMS failed; trying again")
            await asyncio.sleep(POLL)
