"""The pruner: retention by age and count (`[storage]`), applied in the background."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from gateway.clock import Clock
from gateway.config import StorageSettings
from gateway.events import Changes
from gateway.store.engine import Database
from gateway.store.retention import prune

log = logging.getLogger("mail2sms.retention")


class Pruner:
    def __init__(
        self, engine: Database, clock: Clock, settings: StorageSettings, changes: Changes
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._settings = settings
        self._changes = changes

    @property
    def active(self) -> bool:
        return bool(self._settings.max_age or self._settings.max_emails)

    async def prune(self) -> dict[str, int]:
        """One round; ages are on the gateway's clock, as the records' own times are."""
        max_age = self._settings.max_age
        older_than = self._clock.now() - timedelta(seconds=max_age) if max_age else None
        deleted = await prune(
            self._engine, older_than=older_than, keep_emails=self._settings.max_emails
        )
        if any(deleted.values()):
            log.info("retention: pruned %s", deleted)
            self._changes.publish(("emails", "sms", "replies"))
        return deleted

    async def run(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception:
                log.exception("retention: a pruning round failed; trying again")
            await asyncio.sleep(self._settings.prune_interval)
