"""What reading a message after DATA costs the event loop: the gateway's reader
(gateway/smtp.py, whole lines at a time) against aiosmtpd's own (a line at a time), on the
bench's emails (1 recipient, 500 numX, a 500-line CSV) and a 3.5 MB body, in-process.

    .venv/bin/python -m bench.data [--repeat 300]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.load import template
from bench.servers import KEYID
from gateway import smtp as gateway_smtp
from gateway.config import load_settings

SIZE_LIMIT = 4 * 1024 * 1024


class _Kept:
    """A handler that keeps nothing and answers 250; a writer that drops the answers."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"

    def write(self, data: bytes) -> None:
        return None

    async def drain(self) -> None:
        return None


def _ready(server: SMTP, kept: _Kept) -> SMTP:
    server.session = server._create_session()
    server.session.host_name = "client.example.com"
    server.envelope = server._create_envelope()
    server.envelope.mail_from = "app@example.com"
    server.envelope.rcpt_tos = ["sendsms@isendpro-api.com"]
    server._writer = kept  # type: ignore[assignment]
    return server


async def _ms_per_message(message: bytes, repeat: int) -> tuple[float, float]:
    """(gateway's, aiosmtpd's) milliseconds to read `message` after DATA, the whole of it
    already received (as a client's burst arrives)."""
    loop = asyncio.get_running_loop()
    listener = gateway_smtp._Listener(load_settings(None).smtp)
    kept = _Kept()
    timings = []
    for ours in (True, False):
        total = 0.0
        for _ in range(repeat):
            server: Any
            if ours:
                server = gateway_smtp._GatewaySMTP(
                    listener, None, False, kept, data_size_limit=SIZE_LIMIT, loop=loop
                )
                reader = server._input
            else:
                server = SMTP(kept, data_size_limit=SIZE_LIMIT, decode_data=False, loop=loop)
                reader = server._reader = asyncio.StreamReader(
                    limit=server.line_length_limit, loop=loop
                )
                server.transport = asyncio.Transport()  # aiosmtpd reads while there is one
            _ready(server, kept)
            reader.feed_data(message)
            started = time.perf_counter()
            await server.smtp_DATA("")
            total += time.perf_counter() - started
        timings.append(total / repeat * 1000)
    return timings[0], timings[1]


async def _main(repeat: int) -> None:
    line = b"x" * 76 + b"\r\n"
    messages = {
        "1 recipient": template("single", 1, KEYID),
        "500 numX": template("numx", 500, KEYID),
        "500-line CSV": template("csv", 500, KEYID),
        "3.5 MB body": line * (3_500_000 // len(line)) + b".\r\n",
    }
    print(f"{'message':<14} {'bytes':>9} {'lines':>7} {'gateway ms':>11} {'aiosmtpd ms':>12}")
    for name, message in messages.items():
        times = max(1, repeat // 100) if len(message) > 1_000_000 else repeat
        ours, theirs = await _ms_per_message(message.replace(b"@@ID@@", b"1"), times)
        lines = message.count(b"\r\n")
        print(f"{name:<14} {len(message):>9,} {lines:>7,} {ours:>11.3f} {theirs:>12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300, help="readings of each (300)")
    asyncio.run(_main(parser.parse_args().repeat))


if __name__ == "__main__":
    main()
