"""The HTTP reference: a minimal Starlette endpoint under uvicorn that parses the JSON and answers.

Run as `python -m bench.http_sink [--port N]`; it prints `http sink: HTTP on HOST:PORT` once
listening and stops on SIGTERM or SIGINT. Same uvicorn options as the gateway's HTTP server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway import runtime
from gateway.config import EVENT_LOOPS


async def send(request: Request) -> Response:
    fields = await request.json()
    numbers = fields.get("num", [])
    count = len(numbers) if isinstance(numbers, list) else 1
    return JSONResponse({"etat": {"etat": [{"code": "0"}] * count}})


async def serve(host: str, port: int) -> None:
    app = Starlette(routes=[Route("/cgi-bin/{name}", send, methods=["POST"])])
    config = uvicorn.Config(
        app, log_level="warning", log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # the body written after the headers waits for the client's delayed ACK (40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bound = sock.getsockname()
    print(f"http sink: HTTP on {bound[0]}:{bound[1]}", flush=True)
    await stop.wait()
    server.should_exit = True
    await task


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_sink", description=__doc__)
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
