"""The SMTP listener: aiosmtpd on the application's loop; STARTTLS and AUTH, RCPT filter,
DATA → service, 250/451; the limits that keep one client from starving the others."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
from collections.abc import Awaitable, Callable
from types import MethodType
from typing import Any, AnyStr, cast

from aiosmtpd.smtp import (
    MISSING,
    SMTP,
    AuthResult,
    Envelope,
    LoginPassword,
    Session,
    _AuthMechAttr,
)

from gateway.config import SmtpSettings
from gateway.errors import ConfigError, ProcessingError
from gateway.service import Service
from gateway.store.writer import Written
from gateway.tls import server_context

# (login, password) as the client sent them → accepted?
LoginCheck = Callable[[bytes, bytes], Awaitable[bool]]
# login → the password of the account with that login, None when there is none
PasswordLookup = Callable[[str], Awaitable[str | None]]

log = logging.getLogger("mail2sms.smtp")

OK = "250 2.0.0 OK: applied as email {row}"
UNKNOWN_RECIPIENT = "550 5.1.1 <{address}>: not a gateway address, relaying is not allowed"
TRY_AGAIN = "451 4.3.0 Temporary failure, please retry"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
SHED = "421 4.7.0 Too many connections, closing this idle one; try again later"
SESSION_TOO_LONG = "421 4.4.2 Session too long, closing; reconnect to go on"
TOO_MANY_RECIPIENTS = "421 4.5.3 Too many recipients, closing"
TOO_MUCH_IN_FLIGHT = "451 4.3.1 Too much mail being received at once, please retry"
END_OF_DATA = b".\r\n"
# What reading a message after DATA found (`_ClientInput.read_message`).
MESSAGE, TOO_LONG, TOO_MUCH = "message", "too long", "too much"
# aiosmtpd 1.4's own answers in DATA (`_GatewaySMTP._data` runs its copy of that command).
NEED_RCPT = "503 Error: need RCPT command"
DATA_SYNTAX = "501 Syntax: DATA"
START_DATA = "354 End data with <CR><LF>.<CR><LF>"
DATA_ANSWERS = {
    TOO_LONG: "500 Line too long (see RFC5321 4.5.3.1.6)",
    TOO_MUCH: "552 Error: Too much mail data",
}
DATA_OK = "250 OK"
AUTH_UNAVAILABLE = "454 4.7.0 Temporary authentication failure, please retry"
MECHANISMS = ("LOGIN", "PLAIN")
# asyncio's StreamReaderProtocol state, made for each connection (left out of the template).
_STREAM_STATE = frozenset(
    {
        "_loop", "_paused", "_drain_waiters", "_connection_lost", "_stream_reader_wr",
        "_source_traceback", "_strong_reader", "_reject_connection", "_stream_writer", "_task",
        "_transport", "_client_connected_cb", "_over_ssl", "_closed",
    }
)  # fmt: skip
# The addresses of MAIL FROM and RCPT TO already parsed (aiosmtpd's parser costs ~30 µs a
# command, as much as reading a whole plain request): bounded in count and length.
_ADDRESSES: dict[tuple[str, int], tuple[str | None, str | None]] = {}
_ADDRESSES_KEPT = 1024
_ADDRESS_CHARS = 512


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
        # It reports MAIL FROM:<> (a bounce's empty sender) as "<>".
        mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from or ""
        sender = mail_from.encode("utf-8", "surrogateescape")
        envelope_from = sender.decode("utf-8", "replace").replace("\x00", "")
        answer = server.answer_now if isinstance(server, _GatewaySMTP) else None
        try:
            outcome = await self._service.submit(
                raw, envelope_from=envelope_from, client_ip=client_ip, answer=answer
            )
        except ProcessingError as exc:
            log.warning("451 for email from %s: %s", envelope.mail_from, exc)
            return TRY_AGAIN
        except Exception:
            log.exception("451 for email from %s", envelope.mail_from)
            return TRY_AGAIN
        return OK.format(row=outcome.email_row)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> list[str]:
        session.host_name = hostname  # this hook's duty, as aiosmtpd's own EHLO does
        lines = list(responses)
        if not getattr(server, "offers_auth", True):
            # With auth = "off", aiosmtpd would still list AUTH once STARTTLS is done.
            lines = [line for line in lines if not line.startswith("250-AUTH")]
        # aiosmtpd writes each line it is given in a send of its own (six for one EHLO): the
        # same bytes as one line with CRLFs inside take one (`push` adds the last CRLF).
        return ["\r\n".join(lines)]


class _Session(Session):
    """aiosmtpd's session, less the deprecation warning it logs itself at every AUTH."""

    login_data: Any = None


class _Envelope(Envelope):
    """aiosmtpd's envelope, counting the RCPT commands of its transaction."""

    rcpt_commands = 0


class _Listener:
    """What the connections of one listener share: the open ones, oldest first, against
    smtp.max_connections, and the message bytes held at once, against smtp.max_inflight_bytes."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._open: dict[_GatewaySMTP, None] = {}  # insertion order: oldest first
        self._held = 0
        # What aiosmtpd's __init__ made of the first connection (the same for every one).
        self.smtp_state: dict[str, Any] | None = None

    def admit(self, connection: _GatewaySMTP) -> bool:
        """At the cap, the oldest connection without a mail transaction makes room (as
        Postfix does under stress); False when every one is in a transaction."""
        if len(self._open) >= self.settings.max_connections:
            idle = next((c for c in self._open if not c.in_transaction), None)
            if idle is None:
                return False
            self.leave(idle)
            idle.hang_up(SHED)
        self._open[connection] = None
        return True

    def leave(self, connection: _GatewaySMTP) -> None:
        self._open.pop(connection, None)

    def take(self, size: int) -> bool:
        if self._held + size > self.settings.max_inflight_bytes:
            return False
        self._held += size
        return True

    def give_back(self, size: int) -> None:
        self._held -= size


class _ClientInput(asyncio.StreamReader):
    """What a client sent. Its end (a half-close) stops the session only once the commands
    before it are answered; message lines are charged to the listener's in-flight budget."""

    def __init__(self, listener: _Listener, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self._listener = listener
        self._message_cap = listener.settings.max_message_size
        self._charging = False
        self._charged = 0
        self._continued = False  # the last read was the head of an over-long line
        self._line_end_owed = False
        self.dropped = False  # the message went over the budget: it gets TOO_MUCH_IN_FLIGHT

    # asyncio.StreamReader's own state (CPython 3.8 to 3.13), read by `_whole_lines`.
    _buffer: bytearray
    _exception: BaseException | None

    def charge(self) -> None:
        """Charge the lines of one message from now on."""
        self._charging, self.dropped = True, False

    def stop_charging(self) -> None:
        """The message is answered: its bytes are no longer held."""
        self._charging = False
        self._listener.give_back(self._charged)
        self._charged = 0

    async def readuntil(self, separator: Any = b"\n") -> bytes:
        if self._line_end_owed:
            self._line_end_owed = False
            return b"\r\n"
        try:
            line = await super().readuntil(separator)
        except asyncio.IncompleteReadError:
            # aiosmtpd ends a session by cancelling its handler, as its eof_received does.
            raise asyncio.CancelledError from None
        except asyncio.LimitOverrunError:
            self._continued = True
            raise
        continued, self._continued = self._continued, False
        if not self._charging or continued or line == END_OF_DATA:
            return line
        if self._charged + len(line) > self._message_cap:
            self._charging = False  # aiosmtpd drops this message (552): nothing more is held
        elif self._listener.take(len(line)):
            self._charged += len(line)
        else:
            # Over the budget: this message goes at once. aiosmtpd drops a message when a line
            # overruns, reads the rest to its end and answers it: the line is dropped and
            # reported as an overrun of 0 bytes, whose line end follows.
            self.stop_charging()
            self.dropped, self._line_end_owed = True, True
            raise asyncio.LimitOverrunError("over smtp.max_inflight_bytes", 0)
        return line

    async def read_message(self, size_limit: int | None, line_limit: int) -> tuple[str, bytes]:
        """A message after DATA, up to its final dot: (MESSAGE, its content dot-unstuffed), or
        (TOO_LONG or TOO_MUCH, b"") for aiosmtpd's 500 and 552, exactly as its own loop
        (SMTP.smtp_DATA) reads it. That loop costs ~2 µs of Python a line: 0.8 ms for a
        500-number CSV, 120 ms of the event loop for a 3.5 MB body (`python -m bench.data`).
        Here the whole lines already received go at once when none is over a limit
        (`_whole_lines`: 0.08 ms, 22 ms); any other line goes through that loop's steps."""
        kept: list[bytes] = []
        size = 0
        state = MESSAGE
        fragments: list[bytes] = []
        slow = 0  # bytes to read a line at a time first (lines `_whole_lines` turned down)
        while True:
            if not fragments and state == MESSAGE and slow <= 0:
                lines, finished, read = self._whole_lines(size, size_limit, line_limit)
                if lines is None:
                    slow = read
                else:
                    size += read
                    kept.append(lines)
                    if finished:
                        break
            try:
                line = await self.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as overrun:
                if state == MESSAGE:
                    state = TOO_LONG
                kept.clear()
                line = await self.read(overrun.consumed)
            slow -= len(line)
            if not fragments and line == END_OF_DATA:
                break
            size += len(line)
            if state == MESSAGE and size_limit and size > size_limit:
                state = TOO_MUCH
                kept.clear()
            fragments.append(line)
            if line.endswith(b"\r\n"):
                whole = b"".join(fragments)
                fragments.clear()
                if state == MESSAGE and len(whole) > line_limit:
                    state = TOO_LONG
                    kept.clear()
                elif state == MESSAGE:
                    kept.append(whole[1:] if whole.startswith(b".") else whole)
        return state, b"".join(kept) if state == MESSAGE else b""

    def _whole_lines(
        self, size: int, size_limit: int | None, line_limit: int
    ) -> tuple[bytes | None, bool, int]:
        """The whole lines already received, dot-unstuffed, whether the final dot ended them
        (it is then read too), and their size as sent; or None, False and how many bytes of
        whole lines are to go a line at a time: those where one would change what the
        line-at-a-time loop decides (a line or the message over its limit, the in-flight
        budget refused). Called at a line's start."""
        buffer = self._buffer
        if self._exception is not None or self._line_end_owed or self._continued:
            return None, False, 0
        if buffer.startswith(END_OF_DATA):
            self._consume(len(END_OF_DATA))
            return b"", True, 0
        end = buffer.find(b"\r\n.\r\n")
        finished = end >= 0
        cut = end + 2 if finished else buffer.rfind(b"\r\n") + 2
        if cut < 2:
            return None, False, 0
        lines = bytes(buffer[:cut])
        if (size_limit and size + cut > size_limit) or (
            cut > line_limit and max(map(len, lines.split(b"\r\n"))) + 2 > line_limit
        ):
            return None, False, cut
        if self._charging:
            if self._charged + cut > self._message_cap or not self._listener.take(cut):
                return None, False, cut
            self._charged += cut
        self._consume(cut + len(END_OF_DATA) if finished else cut)
        if lines.startswith(b"."):
            lines = lines[1:]
        return lines.replace(b"\r\n.", b"\r\n"), finished, cut

    def _consume(self, size: int) -> None:
        del self._buffer[:size]
        asyncio.StreamReader._maybe_resume_transport(self)  # type: ignore[attr-defined]


class _GatewaySMTP(SMTP):
    """aiosmtpd's SMTP with the limits one party must not exceed (SPEC §16): idle connections
    shed at the cap, a session length, RCPT caps, the in-flight budget, and half-closed
    clients answered; logins checked with an awaitable, so that a database lookup never
    blocks the loop."""

    def __init__(
        self,
        listener: _Listener,
        check_login: LoginCheck | None,
        auth_in_clear: bool,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        template = listener.smtp_state
        if template is None:
            super().__init__(
                *args,
                authenticator=_credentials,
                auth_exclude_mechanism=() if check_login else MECHANISMS,
                **kwargs,
            )
            listener.smtp_state = {
                name: value for name, value in vars(self).items() if name not in _STREAM_STATE
            }
        else:
            self._from_template(template)
        self.offers_auth = check_login is not None
        if auth_in_clear:
            # Passed to aiosmtpd, this would warn at every connection that AUTH is required
            # without TLS: here that is the documented choice for a plain local port.
            self._auth_require_tls = False
        self._check_login = check_login
        self._listener = listener
        self._input = _ClientInput(listener, self.line_length_limit, self.loop)
        # aiosmtpd reads through a plain StreamReader of its own making: the protocol is set
        # up again with ours, before any connection exists.
        asyncio.StreamReaderProtocol.__init__(
            self, self._input, client_connected_cb=self._cb_client_connected, loop=self.loop
        )
        self._admitted = False
        self._session_timer: asyncio.TimerHandle | None = None
        self._in_data = False
        self._session_over = False
        self._rcpt_commands = 0
        self._idle_until = 0.0  # when smtp.timeout cuts the session (`_reset_timeout`)
        self._answered = False  # the message's answer is written already (`answer_now`)

    def _from_template(self, template: dict[str, Any]) -> None:
        """aiosmtpd's __init__ without its cost (~80 µs a connection: it lists the methods of
        the server and of the handler with inspect each time): the state the listener's first
        connection got from it, its method tables bound to this connection. The stream state
        is made anew below (StreamReaderProtocol.__init__)."""
        self.__dict__.update(template)
        self._smtp_methods = {
            name: MethodType(method.__func__, self)
            for name, method in template["_smtp_methods"].items()
        }
        self._auth_methods = {
            name: _AuthMechAttr(MethodType(auth.method.__func__, self), True)
            if auth.is_builtin
            else auth
            for name, auth in template["_auth_methods"].items()
        }
        self._handle_hooks = dict(template["_handle_hooks"])

    def _create_session(self) -> Session:
        return _Session(self.loop)

    def _create_envelope(self) -> Envelope:
        return _Envelope()

    @property
    def in_transaction(self) -> bool:
        return self.envelope is not None and self.envelope.mail_from is not None

    # aiosmtpd parses PLAIN and LOGIN (its authenticator is synchronous, so `_credentials`
    # only hands the pair back); the check itself is awaited here.
    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._checked(await super().auth_PLAIN(server, args))

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._checked(await super().auth_LOGIN(server, args))

    async def _checked(self, parsed: AuthResult) -> AuthResult:
        if not parsed.success or self._check_login is None:
            return parsed
        credentials = parsed.auth_data
        assert isinstance(credentials, LoginPassword)
        try:
            accepted = await self._check_login(credentials.login, credentials.password)
        except Exception:
            log.exception("AUTH could not be checked")
            return AuthResult(success=False, handled=False, message=AUTH_UNAVAILABLE)
        if not accepted:
            return AuthResult(success=False, handled=False)  # aiosmtpd answers 535 5.7.8
        return AuthResult(success=True, auth_data=credentials)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._admitted:  # again, with the TLS transport, after STARTTLS
            super().connection_made(transport)
            return
        if not self._listener.admit(self):
            # A write transport (uvloop's are not asyncio's classes: no isinstance check).
            cast(asyncio.WriteTransport, transport).write(_line(TOO_MANY_CONNECTIONS))
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._session_timer = self.loop.call_later(
            self._listener.settings.max_session_seconds, self._end_session
        )

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd's idle timeout (smtp.timeout from the last command), its one timer moved
        on lazily: aiosmtpd cancels it and schedules a new one at every command (asyncio's
        call_later: a handle, a copy of the context, a heap push, the cancelled one left in
        the heap), here the deadline moves and the timer, when it fires early, is set again
        for the rest; a deadline sooner than the timer's (aiosmtpd's PROXY wait) sets it anew.
        Measured (`bench.ab`, ten alternating rounds, 2026-12-02): CPU an email 1 recipient
        0.85 → 0.81 ms (+5.4 % emails/s), fresh connections 1.45 → 1.39 ms."""
        self._idle_until = self.loop.time() + (duration or self._timeout_duration)
        timer = self._timeout_handle
        if timer is None or self._idle_until < timer.when():
            if timer is not None:
                timer.cancel()
            self._timeout_handle = self.loop.call_at(self._idle_until, self._idle_check)

    def _idle_check(self) -> None:
        if self.loop.time() < self._idle_until:
            self._timeout_handle = self.loop.call_at(self._idle_until, self._idle_check)
            return
        self._timeout_cb()  # type: ignore[no-untyped-call]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._listener.leave(self)
        if self._session_timer is not None:
            self._session_timer.cancel()
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:
        if not self._admitted:
            return None
        if self.session is None or self.session.ssl is not None:
            return super().eof_received()  # TLS has no half-close: aiosmtpd's way
        # aiosmtpd cancels the session here, answers unsent; the input ends it instead, once
        # read (True keeps the socket open for the answers).
        return asyncio.StreamReaderProtocol.eof_received(self)

    def hang_up(self, reply: str) -> None:
        """Answer `reply` and close, from outside the session's own task."""
        if self.transport is not None:
            cast(asyncio.WriteTransport, self.transport).write(_line(reply))
            self.transport.close()

    async def _close_with(self, reply: str) -> None:
        """Answer `reply` and close, from within the session's task (as aiosmtpd's QUIT)."""
        await self.push(reply)
        assert self._handler_coroutine is not None and self.transport is not None
        self._handler_coroutine.cancel()
        self.transport.close()

    def _end_session(self) -> None:
        if self._in_data:
            self._session_over = True  # the email being received is answered first
        else:
            self.hang_up(SESSION_TOO_LONG)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's reading of "<address> params", the address's part remembered.

        Exact by construction: aiosmtpd's parser reads "<…>" up to its first ">" (no quote,
        backslash or comment before it), then only spaces and tabs. A remembered "<…>" is
        used only when its own reading took it whole; anything else (a comment after the
        ">", "<>", a refused address) goes to aiosmtpd's parser every time."""
        head, end, tail = arg.partition(">")
        rest = tail.lstrip(" \t")
        if (
            not end
            or not head.lstrip().startswith("<")
            or head.lstrip() == "<"
            or len(head) >= _ADDRESS_CHARS
            or rest.startswith("(")
            or any(c in head for c in '"\\(')
        ):
            return super()._getaddr(arg)
        key = (head + end, self.local_part_limit)
        found = _ADDRESSES.get(key)
        if found is None:
            found = super()._getaddr(key[0])
            if len(_ADDRESSES) >= _ADDRESSES_KEPT:
                # The oldest goes; gateways on other threads (the pytest plugin) share this.
                with contextlib.suppress(RuntimeError, StopIteration, KeyError):
                    del _ADDRESSES[next(iter(_ADDRESSES))]
            _ADDRESSES[key] = found
        address, left = found
        if address is None or left != "":
            return super()._getaddr(arg)
        return address, rest

    async def smtp_RCPT(self, arg: str | None) -> None:
        assert isinstance(self.envelope, _Envelope)
        self._rcpt_commands += 1
        self.envelope.rcpt_commands += 1
        settings = self._listener.settings
        if (
            self.envelope.rcpt_commands > settings.max_recipients_per_transaction
            or self._rcpt_commands > settings.max_recipients_per_session
        ):
            await self._close_with(TOO_MANY_RECIPIENTS)
            return
        await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        self._input.charge()
        try:
            await self._data(arg)
        finally:
            self._in_data = False
            self._input.stop_charging()
        if self._session_over:
            await self._close_with(SESSION_TOO_LONG)

    async def _data(self, arg: str) -> None:
        """aiosmtpd's SMTP.smtp_DATA (1.4), its message read by `_ClientInput.read_message`."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(NEED_RCPT)
            return
        if arg:
            await self.push(DATA_SYNTAX)
            return
        await self.push(START_DATA)
        try:
            state, content = await self._input.read_message(
                self.data_size_limit, self.line_length_limit
            )
        except asyncio.CancelledError:
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        if state != MESSAGE:
            await self.push(DATA_ANSWERS[state])
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        # decode_data is False (start_smtp): the content stays bytes, as the core reads it.
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        answered, self._answered = self._answered, False
        if not answered:
            await self.push(DATA_OK if status is MISSING else status)

    def answer_now(self, written: Written) -> None:
        """The email's `250` written the moment its commit is known, by the writer's answer
        on the event loop, rather than once this session's task has its next turn (~0.5–1 ms
        later under load, bench/); its DATA then pushes nothing more."""
        if self._writer is None or self._writer.is_closing():
            return
        self._writer.write(OK.format(row=written.email_row).encode("ascii") + b"\r\n")
        self._answered = True

    async def push(self, status: AnyStr) -> None:
        if self._input.dropped:  # aiosmtpd's answer to the message dropped for the budget
            self._input.dropped = False
            await super().push(TOO_MUCH_IN_FLIGHT)
            return
        await super().push(status)


def _line(reply: str) -> bytes:
    return reply.encode("ascii") + b"\r\n"


def _credentials(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: LoginPassword
) -> AuthResult:
    return AuthResult(success=True, auth_data=data)


async def _accept_any(login: bytes, password: bytes) -> bool:
    return True


def _account_logins(passwords: PasswordLookup) -> LoginCheck:
    async def check(login: bytes, password: bytes) -> bool:
        try:
            stored = await passwords(login.decode("utf-8"))
        except UnicodeDecodeError:
            return False
        # Compared in constant time, and even for an unknown login.
        expected = (stored or "").encode("utf-8")
        return hmac.compare_digest(expected, password) and stored is not None

    return check


async def start_smtp(
    service: Service, settings: SmtpSettings, passwords: PasswordLookup | None = None
) -> tuple[asyncio.Server, int]:
    """Bind the listener (port 0 picks a free one); a port in use or an unusable certificate
    is a ConfigError. `passwords` serves smtp.auth = "accounts"."""
    tls_context = server_context(settings)
    check_login: LoginCheck | None = None
    if settings.auth == "any":
        check_login = _accept_any
    elif settings.auth == "accounts":
        assert passwords is not None, 'smtp.auth = "accounts" needs the account passwords'
        check_login = _account_logins(passwords)
    auth_in_clear = check_login is not None and not settings.starttls
    handler = Handler(service, settings.gateway_addresses)
    listener = _Listener(settings)
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            lambda: _GatewaySMTP(
                listener,
                check_login,
                auth_in_clear,
                handler,
                data_size_limit=settings.max_message_size,
                enable_SMTPUTF8=True,
                decode_data=False,
                hostname="isendpro-api.com",
                ident="mail2sms gateway emulator",
                timeout=settings.timeout,
                tls_context=tls_context,
                auth_required=settings.auth_required,
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
