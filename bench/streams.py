"""`python -m bench.streams`: /healthz and an ordinary request while many event streams and
long-polls are open (SPEC §16), against a gateway in its own process (SQLite, loopback).

Opens `--streams` event streams (each until its first event), then `--long-polls` long-polls
that nothing will satisfy (timeout 30 s), then measures: the latency of /healthz and of
`GET /api/v1/sms?limit=1` (fresh connection each, `--samples` times), the gateway's CPU while
everything stays open and idle, its memory, and /healthz while one change is broadcast to
every stream and wakes every long-poll. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.servers import Server, start_gateway, write_config

BATCH = 200  # connections opened at once (the listen backlog is 2048)


async def _request(port: int, target: str, method: str = "GET") -> tuple[int, float]:
    """One request on a fresh connection: its status and seconds until the whole answer."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b"{}" if method != "GET" else b""
    writer.write(
        f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    answer = await reader.read()
    writer.close()
    return int(answer.split(b" ", 2)[1]), time.perf_counter() - started


async def _latencies(port: int, target: str, samples: int) -> dict[str, Any]:
    seconds, statuses = [], set()
    for _ in range(samples):
        status, took = await _request(port, target)
        statuses.add(status)
        seconds.append(took)
    return {
        "statuses": sorted(statuses),
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


class Open:
    def __init__(self, port: int) -> None:
        self.port = port
        self.writers: list[asyncio.StreamWriter] = []
        self.refused = 0

    async def stream(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            self.refused += 1
            return
        await reader.readuntil(b"event: change")

    async def long_poll(self, n: int) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        target = f"/api/v1/sms?email_id=lp{n}&wait_for=1&timeout=30"
        writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        self.writers.append(writer)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


async def measure(server: Server, streams: int, long_polls: int, samples: int) -> dict[str, Any]:
    port = int(server.api.rsplit(":", 1)[1])
    found: dict[str, Any] = {"streams": streams, "long_polls": long_polls}
    found["healthz_idle"] = await _latencies(port, "/healthz", samples)
    held = Open(port)
    started = time.perf_counter()
    for first in range(0, streams, BATCH):
        await asyncio.gather(*(held.stream() for _ in range(min(BATCH, streams - first))))
    for first in range(0, long_polls, BATCH):
        count = min(BATCH, long_polls - first)
        await asyncio.gather(*(held.long_poll(first + n) for n in range(count)))
    found["open_seconds"] = round(time.perf_counter() - started, 1)
    found["streams_refused_503"] = held.refused
    await asyncio.sleep(1)  # the last long-polls reach the server and make their first query
    found["healthz_open"] = await _latencies(port, "/healthz", samples)
    found["sms_list_open"] = await _latencies(port, "/api/v1/sms?limit=1", samples)
    cpu_before = server.cpu()[1]
    await asyncio.sleep(5)
    cpu_after = server.cpu()[1]
    found["idle_cpu_percent"] = round((cpu_after - cpu_before) / 5 * 100, 1)
    found["memory_mib"] = {k: round(v) for k, v in server.memory().items()}
    # One change for everyone: every stream gets an event, every long-poll queries again.
    broadcast = asyncio.create_task(_request(port, "/api/v1/messages", "DELETE"))
    found["healthz_during_broadcast"] = await _latencies(port, "/healthz", samples)
    found["broadcast_status"] = (await broadcast)[0]
    held.close()
    return found


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--streams", type=int, default=3000)
    options.add_argument("--long-polls", type=int, default=500)
    options.add_argument("--samples", type=int, default=20)
    options.add_argument("--max-streams", type=int, default=None, help="http.max_streams")
    args = options.parse_args()
    with tempfile.TemporaryDirectory(prefix="mail2sms-streams-") as folder:
        config = write_config(Path(folder) / "c.toml", f"sqlite+aiosqlite:///{folder}/g.db")
        if args.max_streams is not None:  # the [http] section comes just before [database]
            text = config.read_text()
            limit = f"max_streams = {args.max_streams}\n[database]"
            config.write_text(text.replace("[database]", limit, 1))
        server = start_gateway("gateway", config, Path(folder))
        try:
            found = asyncio.run(measure(server, args.streams, args.long_polls, args.samples))
        finally:
            server.stop()
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
