"""The HTTP API's load generator: raw asyncio HTTP/1.1 clients on kept-alive connections,
timing each POST from its first byte to the end of the answer.

Run as `python -m bench.http_load '<json spec>'` (see `Spec`); prints one JSON object like
bench.load's. `/cgi-bin/sms` carries one number, `/cgi-bin/smsmulti` `recipients` numbers and one
text; every call is a JSON body. Stops at `messages` calls or after `seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.load import TEXT, answered, run_clients, serve_spec, summary


@dataclass
class Spec:
    targets: list[tuple[str, int]]
    kind: str = "http-sms"  # http-sms | http-smsmulti
    recipients: int = 1
    concurrency: int = 16
    messages: int = 1000
    seconds: float = 20.0
    keyid: str = "bench"


def request(spec: Spec, host: str) -> bytes:
    multi = spec.kind == "http-smsmulti"
    numbers = [f"0612{i:06d}" for i in range(1, spec.recipients + 1)]
    fields = {
        "keyid": spec.keyid,
        "num": numbers if multi else numbers[0],
        "sms": TEXT,
        "emetteur": "MaSociete",
    }
    body = json.dumps(fields).encode()
    path = "/cgi-bin/smsmulti" if multi else "/cgi-bin/sms"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


@dataclass
class Run:
    spec: Spec
    issued: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    start: float = 0.0
    deadline: float = 0.0
    end: float = 0.0

    def take(self) -> bool:
        if self.issued >= self.spec.messages or time.perf_counter() >= self.deadline:
            return False
        self.issued += 1
        return True

    async def client(self, n: int) -> None:
        host, port = self.spec.targets[n % len(self.spec.targets)]
        payload = request(self.spec, f"{host}:{port}")
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while self.take():
                sent = time.perf_counter()
                writer.write(payload)
                status = await _answer(reader)
                answered(self, sent, status == 200, f"HTTP {status}")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.errors[type(exc).__name__] += 1
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def go(self) -> None:
        self.start = time.perf_counter()
        self.deadline = self.start + self.spec.seconds
        await run_clients(self, [self.client(n) for n in range(self.spec.concurrency)])

    def report(self, cpu: float) -> dict[str, Any]:
        return summary(self, cpu, len(request(self.spec, "h")))


def main() -> None:
    serve_spec(
        lambda raw: Run(Spec(**{k: v for k, v in raw.items() if k in Spec.__dataclass_fields__}))
    )


if __name__ == "__main__":
    main()
