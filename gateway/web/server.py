"""uvicorn on the gateway's own event loop, on a socket bound here (port 0 = any free port)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator

import uvicorn

from gateway.errors import ConfigError
from gateway.web.api import create_app
from gateway.web.context import WebContext
from gateway.web.live import Live

# Open event streams and long-polls end on shutdown; this bounds anything else still running.
GRACEFUL_SHUTDOWN = 5


class HttpServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the gateway and ends live requests on shutdown."""

    def __init__(self, config: uvicorn.Config, live: Live) -> None:
        super().__init__(config)
        self.live = live

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The gateway (CLI or a test) owns SIGINT/SIGTERM, not the embedded HTTP server.
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.live.close()
        await super().shutdown(sockets)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; a taken port or unknown host is a ConfigError naming the key."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(f"http.host {host!r} cannot be resolved: {exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"http.port {port} on {host} is already in use; choose another http.port "
                "(0 = any free port)"
            ) from None
        raise ConfigError(f"cannot listen on http.host {host} http.port {port}: {exc}") from None
    sock.setblocking(False)
    return sock


async def start_http(context: WebContext) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Serve the API and the page; returns the server, its task and the bound port once it
    accepts connections. Stop it with `stop_http` (cancelling the task also ends it cleanly)."""
    settings = context.settings.http
    sock = bind(settings.host, settings.port)
    app = create_app(context)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    server = HttpServer(config, app.state.live)
    task = asyncio.create_task(_serve(server, sock), name="mail2sms-http")
    while not server.started and not task.done():
        await asyncio.sleep(0.005)
    if task.done():
        task.result()  # raises what stopped it
        raise RuntimeError("the HTTP server stopped during start-up")
    port: int = sock.getsockname()[1]
    return server, task, port


async def _serve(server: HttpServer, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except asyncio.CancelledError:
        if server.started:
            server.should_exit = True
            await server.shutdown(sockets=[sock])
        raise
    finally:
        sock.close()


async def stop_http(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Stop accepting, end event streams and long-polls, wait for the server to finish."""
    server.should_exit = True
    await asyncio.wait([task])
    if not task.cancelled():
        task.result()
