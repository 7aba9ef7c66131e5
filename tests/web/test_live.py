"""Event streams and long-polls (SPEC §16): served from in-process notifications and one shared
poller, capped by http.max_streams, and /healthz answers whatever is open; over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from gateway.app import Gateway
from gateway.web.server import start_http, stop_http
from tests.web.conftest import make_settings

pytestmark = pytest.mark.asyncio


class Statements:
    """Counts the statements the gateway sends to its database."""

    def __init__(self, gateway: Gateway) -> None:
        self.count = 0
        self.filtered = 0  # those of a list filtered by email_id
        self._engine = gateway.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self.count += 1
        self.filtered += "email_id =" in statement

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


@pytest.fixture
def statements(gateway: Gateway) -> Any:
    counter = Statements(gateway)
    yield counter
    counter.close()


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


class Held:
    """Requests held open on raw loopback sockets (cheaper than an HTTP client per request)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def open(self, target: str) -> asyncio.StreamReader:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        self.connections.append((reader, writer))
        return reader

    async def stream(self) -> None:
        """An event stream, once its first `change` has arrived."""
        reader = await self.open("/api/v1/events")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        await reader.readuntil(b"event: change")

    async def close(self) -> None:
        for _, writer in self.connections:
            writer.close()
        for _, writer in self.connections:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self.connections.clear()


@pytest.fixture
async def held(base_url: str) -> AsyncIterator[Held]:
    requests = Held(int(base_url.rsplit(":", 1)[1]))
    yield requests
    await requests.close()


async def test_open_event_streams_query_the_database_once_per_poll_not_per_stream(
    held: Held, statements: Statements
) -> None:
    await asyncio.gather(*(held.stream() for _ in range(20)))
    before = statements.count
    await asyncio.sleep(2.5)  # a window in which every stream would have polled at least once
    assert statements.count - before <= 8, statements.count - before


async def test_waiting_long_polls_query_the_database_only_when_something_changes(
    held: Held, statements: Statements
) -> None:
    for n in range(20):
        await held.open(f"/api/v1/sms?email_id={n}&wait_for=1&timeout=20")
    await until(lambda: statements.filtered >= 20)  # each has made its first query
    before = statements.count
    await asyncio.sleep(2.0)  # a window in which each would have re-queried every RECHECK
    assert statements.count - before <= 8, statements.count - before


# The cap -----------------------------------------------------------------------------------------


@pytest.fixture
async def capped(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Held]]:
    gw = Gateway(make_settings(tmp_path, http={"max_streams": 3}))
    await gw.prepare_database()
    server, task, port = await start_http(gw.web)
    requests = Held(port)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client, requests
    await requests.close()
    await stop_http(server, task)
    await gw.engine.dispose()


async def test_beyond_max_streams_a_stream_or_long_poll_gets_503_with_retry_after(
    capped: tuple[httpx.AsyncClient, Held],
) -> None:
    client, held = capped
    await held.stream()
    await held.stream()
    await held.open("/api/v1/sms?wait_for=1&timeout=20")

    async def refused(path: str) -> None:
        response = await client.get(path)
        assert response.status_code == 503, (path, response.text)
        assert int(response.headers["retry-after"]) >= 1
        assert "http.max_streams" in response.json()["error"]

    # The raw long-poll may not have arrived yet: a short one is served until it has.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (await client.get("/api/v1/emails?wait_for=1&timeout=0.1")).status_code != 503:
        assert loop.time() < deadline
    await refused("/api/v1/events")
    await refused("/api/v1/emails?wait_for=1&timeout=5")
    assert (await client.get("/api/v1/sms")).status_code == 200  # no wait_for: not held
    assert (await client.get("/healthz")).status_code == 200


async def test_a_closed_stream_frees_its_place(capped: tuple[httpx.AsyncClient, Held]) -> None:
    client, held = capped
    for _ in range(3):
        await held.stream()
    assert (await client.get("/api/v1/sms?wait_for=1&timeout=1")).status_code == 503
    await held.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (await client.get("/api/v1/sms?wait_for=1&timeout=0.1")).status_code != 200:
        assert loop.time() < deadline


# /healthz ----------------------------------------------------------------------------------------


async def test_healthz_answers_while_many_streams_and_long_polls_are_open(
    held: Held, client: httpx.AsyncClient
) -> None:
    for start in range(0, 300, 50):
        await asyncio.gather(*(held.stream() for _ in range(start, start + 50)))
    for n in range(100):
        await held.open(f"/api/v1/replies?email_id={n}&wait_for=1&timeout=30")
    loop = asyncio.get_running_loop()
    slowest = 0.0
    for _ in range(5):
        started = loop.time()
        response = await client.get("/healthz")
        slowest = max(slowest, loop.time() - started)
        assert response.status_code == 200
    assert slowest < 5, slowest  # generous: the bench gives the real figure


async def test_a_long_poll_whose_client_left_frees_its_place(
    capped: tuple[httpx.AsyncClient, Held],
) -> None:
    client, held = capped
    for n in range(3):
        await held.open(f"/api/v1/sms?email_id={n}&wait_for=1&timeout=30")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (await client.get("/api/v1/emails?wait_for=1&timeout=0.1")).status_code != 503:
        assert loop.time() < deadline
    await held.close()
    deadline = loop.time() + 10  # within DISCONNECT_CHECK (5 s), long before their 30 s
    while (await client.get("/api/v1/emails?wait_for=1&timeout=0.1")).status_code != 200:
        assert loop.time() < deadline
