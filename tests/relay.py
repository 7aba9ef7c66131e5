"""A real SMTP receiver for tests: collects messages; can refuse, hold, stop and restart."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope and the content exactly as it came (dots unstuffed)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


@dataclass
class _Refusal:
    reply: str
    at: Literal["rcpt", "data"]
    to: str | None
    remaining: int | None  # None: until accept()


class Relay:
    """An aiosmtpd server on the running event loop, at `host`:`port` once started.

    `refuse("451 4.3.0 Try later", times=2)` answers the next two messages (or RCPTs with
    `at="rcpt"`, optionally only for recipient `to`) with that reply; `accept()` ends it.
    `hold()` keeps every DATA waiting after recording the message, before its 250, until
    `release()`: the sender is then still waiting for its answer. `stop()` then `start()`
    gives a relay that is down then back on the same port.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.received: list[Received] = []
        self._changed = asyncio.Condition()
        self._refusal: _Refusal | None = None
        self._released = asyncio.Event()
        self._released.set()
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    async def start(self) -> Relay:
        """Listen: on a free port the first time, on the same port after stop()."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._session, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and drop every open connection, as a relay that went down."""
        if self._server is None:
            return
        self._server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        self._server = None

    def _session(self) -> SMTP:
        session = SMTP(self, hostname="relay.test", loop=asyncio.get_running_loop())
        self._sessions.add(session)
        return session

    def refuse(
        self,
        reply: str,
        *,
        times: int | None = None,
        at: Literal["rcpt", "data"] = "data",
        to: str | None = None,
    ) -> None:
        self._refusal = _Refusal(reply, at, to, times)

    def accept(self) -> None:
        self._refusal = None

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The messages received, once there are at least `count`; AssertionError at timeout."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(self.received) >= count)
        except TimeoutError:
            raise AssertionError(
                f"relay received {len(self.received)} message(s) in {timeout} s, expected {count}"
            ) from None
        return list(self.received)

    def _refusing(self, at: str, recipients: list[str]) -> str | None:
        refusal = self._refusal
        if refusal is None or refusal.at != at:
            return None
        if refusal.to is not None and refusal.to not in recipients:
            return None
        if refusal.remaining is not None:
            refusal.remaining -= 1
            if refusal.remaining <= 0:
                self._refusal = None
        return refusal.reply

    # aiosmtpd handler hooks

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        refused = self._refusing("rcpt", [address])
        if refused is not None:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refused = self._refusing("data", envelope.rcpt_tos)
        if refused is not None:
            return refused
        content = envelope.original_content
        assert isinstance(content, bytes)
        async with self._changed:
            self.received.append(
                Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), content)
            )
            self._changed.notify_all()
        await self._released.wait()
        return "250 OK queued"
