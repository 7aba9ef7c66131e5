"""The SMTP listener: aiosmtpd on the application's loop; RCPT filter, DATA → service, 250/451."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.config import SmtpSettings
from gateway.errors import ConfigError, ProcessingError
from gateway.service import Service

log = logging.getLogger("mail2sms.smtp")

OK = "250 2.0.0 OK: applied as email {row}"
UNKNOWN_RECIPIENT = "550 5.1.1 <{address}>: not a gateway address, relaying is not allowed"
TRY_AGAIN = "451 4.3.0 Temporary failure, please retry"
TOO_MANY_CONNECTIONS = b"421 4.7.0 Too many connections, try again later\r\n"


class Handler:
    """Hands every accepted email to the service; answers only once it is durable."""

    def __init__(self, service: Service, gateway_addresses: tuple[str, ...]) -> None:
        self._service = service
        self._addresses = frozenset(a.lower() for a in gateway_addresses)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: Any
    ) -> str:
        if address.lower() not in self._addresses:
            return UNKNOWN_RECIPIENT.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer
        client_ip = peer[0] if isinstance(peer, tuple) else ""
        # aiosmtpd keeps 8-bit bytes of MAIL FROM as surrogate escapes, which no database
        # can store; they become U+FFFD, and NUL (PostgreSQL refuses it in text) goes.
        sender = (envelope.mail_from or "").encode("utf-8", "surrogateescape")
        envelope_from = sender.decode("utf-8", "replace").replace("\x00", "")
        try:
            outcome = await self._service.submit(
                raw, envelope_from=envelope_from, client_ip=client_ip
            )
        except ProcessingError as exc:
            log.warning("451 for email from %s: %s", envelope.mail_from, exc)
            return TRY_AGAIN
        except Exception:
            log.exception("451 for email from %s", envelope.mail_from)
            return TRY_AGAIN
        return OK.format(row=outcome.email_row)


class _CappedSMTP(SMTP):
    """Refuses connections beyond the cap with 421 so idle clients cannot starve real ones."""

    def __init__(self, counter: list[int], cap: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counter = counter
        self._cap = cap
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._counter[0] >= self._cap:
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            return
        self._counter[0] += 1
        self._counted = True
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted:
            self._counter[0] -= 1
            self._counted = False
            super().connection_lost(exc)


async def start_smtp(service: Service, settings: SmtpSettings) -> tuple[asyncio.Server, int]:
    """Bind the listener (port 0 picks a free one); a port in use is a ConfigError."""
    handler = Handler(service, settings.gateway_addresses)
    counter = [0]
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            lambda: _CappedSMTP(
                counter,
                settings.max_connections,
                handler,
                data_size_limit=settings.max_message_size,
                enable_SMTPUTF8=True,
                decode_data=False,
                hostname="isendpro-api.com",
                ident="mail2sms gateway emulator",
                timeout=settings.timeout,
                loop=loop,
            ),
            host=settings.host,
            port=settings.port,
            family=socket.AF_UNSPEC,
            reuse_address=True,
        )
    except OSError as exc:
        raise ConfigError(
            f"smtp.port: cannot listen on {settings.host}:{settings.port} ({exc.strerror}); "
            "choose a free port (MAIL2SMS_SMTP__PORT) or stop what uses it"
        ) from None
    port = server.sockets[0].getsockname()[1]
    return server, port
