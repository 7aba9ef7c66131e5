"""One gateway: settings, engine, clock and the SMTP, HTTP and outbox tasks on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Coroutine
from types import MappingProxyType
from typing import Any

from gateway.clock import Clock
from gateway.config import Settings
from gateway.core.model import ReplyState, RuleSettings
from gateway.errors import ConfigError, NotMigratedError, StorageError
from gateway.events import Changes
from gateway.metrics import Metrics
from gateway.store import accounts, migrate
from gateway.store.engine import make_engine, sqlite_path, write_transaction
from gateway.web.context import WebContext
from gateway.web.server import start_http, stop_http

log = logging.getLogger("mail2sms")


class Gateway:
    """Everything one running gateway owns. The pytest plugin uses `settings`, `engine`,
    `clock`, `smtp_port`, `http_port`; the web side gets `web` (its part of them only)."""

    def __init__(self, settings: Settings, *, writer_process: bool = False) -> None:
        """`writer_process`: SQLite is written from a child process (`serve`; see
        store/writer_process.py), not from a thread of this one."""
        self.settings = settings
        self._writer_process = writer_process
        self.clock = Clock(settings.clock.frozen_at())
        self.changes = Changes()
        self.metrics = Metrics()
        self.engine = make_engine(settings.database.url)
        self.rules = RuleSettings(
            stop_text=settings.stop.text,
            http_stop_text=settings.stop.http_text,
            raw_max_bytes=settings.storage.raw_max_bytes,
            default_sender=settings.sms.default_sender,
            max_recipients=settings.limits.max_recipients,
            magic_numbers=settings.sms.magic_numbers,
            alsace_moselle=settings.quiet_hours.alsace_moselle,
            number_plan=MappingProxyType(dict(settings.number_plan)),
        )
        self.web = WebContext(
            settings, self.engine, self.clock, self.changes, self.metrics, self.rules
        )
        self.smtp_port: int = settings.smtp.port
        self.http_port: int = settings.http.port
        self._tasks: list[asyncio.Task[Any]] = []
        self._closers: list[asyncio.Server] = []
        self._http_server: Any = None
        self._http_task: asyncio.Task[None] | None = None

    async def prepare_database(self) -> None:
        """SQLite is migrated here; any other database must already be at head."""
        try:
            if sqlite_path(self.settings.database.url) is not None:
                await migrate.upgrade(self.engine)
            elif not await migrate.is_at_head(self.engine):
                raise NotMigratedError(
                    f"database {self.engine.url.render_as_string(hide_password=True)} is not at "
                    "the current schema; run `mail2sms db upgrade` (with the same --config) first"
                )
        except NotMigratedError:
            raise
        except Exception as exc:
            raise StorageError(
                f"cannot use database.url {self.engine.url.render_as_string(hide_password=True)}:"
                f" {exc}"
            ) from exc
        async with write_transaction(self.engine) as conn:
            await accounts.seed(conn, self.settings.accounts, self.clock.now())

    async def start(self) -> None:
        """Bind SMTP and HTTP (port 0 picks free ones) and start the writer and the outbox."""
        from gateway.outbox import Outbox
        from gateway.retention import Pruner
        from gateway.scheduler import Scheduler
        from gateway.service import Service
        from gateway.smtp import start_smtp
        from gateway.store.writer import open_writer

        if not self.settings.http_is_loopback and not self.settings.http.admin_token:
            raise ConfigError(
                f"http.admin_token: required when http.host ({self.settings.http.host}) is not "
                "loopback; set it (MAIL2SMS_HTTP__ADMIN_TOKEN) or bind http.host to 127.0.0.1"
            )
        await self.prepare_database()
        reply_state = ReplyState.PENDING if self.settings.relay.host else ReplyState.KEPT
        writer = open_writer(
            self.engine, self.rules, reply_state, own_process=self._writer_process
        )
        self.service = Service(
            writer,
            functools.partial(accounts.lookup, self.engine),
            self.clock,
            self.settings,
            self.changes,
            self.metrics,
        )
        smtp_server, self.smtp_port = await start_smtp(
            self.service, self.settings.smtp, functools.partial(accounts.password_for, self.engine)
        )
        self._closers.append(smtp_server)
        self.web = dataclasses.replace(self.web, send=self.service.apply)
        http_server, http_task, self.http_port = await start_http(self.web)
        self._http_server = http_server
        self._http_task = http_task
        self._tasks.append(http_task)
        outbox = Outbox(self.engine, self.settings.relay, self.changes, self.metrics)
        self._spawn(outbox.run(), "outbox")
        self._spawn(Scheduler(self.engine, self.clock, self.changes).run(), "scheduler")
        pruner = Pruner(self.engine, self.clock, self.settings.storage, self.changes)
        if pruner.active:
            self._spawn(pruner.run(), "retention")

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coroutine, name=f"mail2sms-{name}")
        task.add_done_callback(self._task_died)
        self._tasks.append(task)

    @staticmethod
    def _task_died(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s died", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        """Stop listening, let the emails already received commit, then end every task."""
        for server in self._closers:
            server.close()
        service = getattr(self, "service", None)
        if service is not None:
            await service.drain(timeout=10)
            service.close()
        if self._http_server is not None and self._http_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stop_http(self._http_server, self._http_task), 10)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for server in self._closers:
            await server.wait_closed()
        self._closers.clear()
        await self.engine.dispose()
