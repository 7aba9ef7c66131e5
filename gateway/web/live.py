"""Event streams and long-polls (SPEC §11, §16): they wait on in-process notifications, one
poller per process notices other replicas' writes, and at most http.max_streams are held."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.events import Changes
from gateway.store import reads
from gateway.store.engine import Database

log = logging.getLogger("mail2sms.web")
T = TypeVar("T")

# Other replicas' writes reach streams and long-polls within this delay.
POLL = 0.5
HEARTBEAT = 15.0
# A burst of commits becomes one event (and one refetch by the page).
COALESCE = 0.2
# Held requests' queries at once: the rest of the pool stays free for /healthz, the writer,
# the outbox and ordinary requests, however many long-polls wake together.
QUERY_SLOTS = 4
RETRY_AFTER = 5  # seconds, in the 503 beyond http.max_streams
READY_TIMEOUT = 5.0  # a held request waits this long at most for the poller's first look


class Live:
    """What every event stream and long-poll of one process shares."""

    def __init__(self, engine: Database, changes: Changes, max_streams: int) -> None:
        self.engine = engine
        self.changes = changes
        self.max_streams = max_streams
        self.held = 0
        self.closing = asyncio.Event()
        self._slots = asyncio.Semaphore(QUERY_SLOTS)
        self._poller: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    # Places ------------------------------------------------------------------------------------

    def take(self) -> Callable[[], None]:
        """A place for one stream or long-poll, or a 503 beyond max_streams; call the function
        returned to give it back (once is enough, more is harmless)."""
        if self.held >= self.max_streams:
            raise HTTPException(
                503,
                f"{self.held} event streams and long-polls are open, the most this gateway "
                f"holds (http.max_streams); try again in {RETRY_AFTER} s",
                {"Retry-After": str(RETRY_AFTER)},
            )
        self.held += 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if not given_back:
                given_back = True
                self.held -= 1

        return give_back

    async def watching(self) -> None:
        """Make sure the poller runs and has taken its first look, so that a query made after
        this misses no other replica's write."""
        if self._poller is None or self._poller.done():
            self._ready = asyncio.Event()
            self._poller = asyncio.create_task(self._poll(self._ready), name="mail2sms-poller")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READY_TIMEOUT):
                await self._ready.wait()

    async def query(self, work: Callable[[], Awaitable[T]]) -> T:
        """A held request's query, in one of the few slots that held requests share."""
        async with self._slots:
            return await work()

    async def close(self) -> None:
        """End every stream and long-poll (the server shuts down) and the poller."""
        self.closing.set()
        self.changes.wake()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    # The poller --------------------------------------------------------------------------------

    async def _poll(self, ready: asyncio.Event) -> None:
        """While anything is held: every POLL seconds one cheap look at the database; a topic
        whose marker moved (another replica, or we, wrote) is published."""
        marks = await self._marks()
        ready.set()
        while self.held and not self.closing.is_set():
            await asyncio.sleep(POLL)
            fresh = await self._marks()
            moved = [topic for topic, mark in fresh.items() if marks and mark != marks.get(topic)]
            if moved:
                self.changes.publish(moved)
            marks = fresh or marks

    async def _marks(self) -> dict[str, tuple[Any, ...]]:
        try:
            async with self.engine.connect() as conn:
                return await reads.fingerprint(conn)
        except Exception:
            log.warning("live updates: cannot read the database", exc_info=True)
            return {}

    # Event streams -----------------------------------------------------------------------------

    def events(self) -> StreamingResponse:
        """An event stream (`text/event-stream`), or a 503 beyond max_streams."""
        return HeldStream(
            self._stream(),
            self.take(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(self) -> AsyncIterator[str]:
        """`event: change` with the topics' versions at once and on every change (ours at once,
        other replicas' within POLL seconds), a comment every HEARTBEAT seconds; ends on close."""
        await self.watching()
        loop = asyncio.get_running_loop()
        yield "retry: 2000\n\n"
        sent: dict[str, int] | None = None
        next_beat = loop.time() + HEARTBEAT
        while not self.closing.is_set():
            current = {topic: self.changes.versions.get(topic, 0) for topic in Changes.TOPICS}
            if current != sent:
                yield f"event: change\ndata: {json.dumps(current)}\n\n"
                sent = current
                await asyncio.sleep(COALESCE)
            elif loop.time() >= next_beat:
                yield ": keepalive\n\n"
                next_beat = loop.time() + HEARTBEAT
            else:
                await self.changes.wait(next_beat - loop.time())


class HeldStream(StreamingResponse):
    """A streaming response that gives its place back however it ends (even unstarted)."""

    def __init__(
        self, content: AsyncIterator[str], give_back: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self.give_back = give_back

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.give_back()
