"""`mail2sms serve`: run the gateway until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from gateway.cli.common import command, opening_database
from gateway.config import Settings


def add_parser(commands: Any) -> None:
    command(
        commands,
        "serve",
        "run the gateway (SMTP + HTTP); SQLite is migrated and the settings' accounts seeded",
        "examples:\n  mail2sms serve\n  MAIL2SMS_SMTP__PORT=2526 mail2sms serve",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> int:
    from gateway.app import Gateway

    with opening_database():
        gateway = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await gateway.start()
        print(
            f"mail2sms: SMTP on {settings.smtp.host}:{gateway.smtp_port} "
            f"(send to {settings.smtp.gateway_addresses[0]}), "
            f"web page and API on http://{settings.http.host}:{gateway.http_port}/",
            flush=True,
        )
        await stop.wait()
    finally:
        await gateway.stop()
    return 0
