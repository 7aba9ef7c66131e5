"""The reference: a bare aiosmtpd server (loop.create_server) that accepts every email, drops it.

Run as `python -m bench.sink [--port N]`; it prints `sink: SMTP on HOST:PORT` once listening and
stops on SIGTERM or SIGINT. Same SMTP options as the gateway's listener, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway import runtime
from gateway.config import EVENT_LOOPS


class Drop:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK"


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = Drop()

    def protocol() -> Any:
        return SMTP(
            handler,
            data_size_limit=10 * 1024 * 1024,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname="sink.invalid",
            loop=loop,
        )

    server = await loop.create_server(protocol, host=host, port=port, reuse_address=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()
    print(f"sink: SMTP on {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--loop", choices=EVENT_LOOPS, default="asyncio", help="the event loop (the gateway's)"
    )
    args = parser.parse_args()
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=runtime.loop_factory(args.loop)) as runner,
    ):
        runner.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
