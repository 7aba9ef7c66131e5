"""One party's SMTP connections cannot degrade the others' (SPEC §16), over real sockets:
idle connections shed at the cap, session and RCPT limits, half-closed clients answered, and
the message bytes held at once bounded."""

from __future__ import annotations

import itertools
import selectors
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from gateway.client import request_body
from gateway.testing import RunningGateway

_email_ids = itertools.count(5000)


class Peer:
    """A raw SMTP client socket: send lines, read whole replies, see when the gateway hangs up."""

    def __init__(self, gw: RunningGateway) -> None:
        self.sock = socket.create_connection((gw.smtp_host, gw.smtp_port), timeout=10)
        self._pending = b""

    def reply(self, timeout: float = 10) -> bytes:
        """The next whole reply (its last line, CRLF included); b"" once the gateway hung up."""
        lines = b""
        until = time.monotonic() + timeout
        while True:
            line, found, rest = self._pending.partition(b"\r\n")
            if found:
                self._pending = rest
                lines = line + found
                if line[3:4] != b"-":
                    return lines
                continue
            left = until - time.monotonic()
            assert left > 0, f"no reply within {timeout} s (got {self._pending!r})"
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                return b""
            self._pending += chunk

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def silent_for(self, seconds: float) -> bool:
        """True when the gateway sends nothing (and keeps the connection) for `seconds`."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            return not selector.select(seconds)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    """Raw clients opened by the test, closed after it."""
    opened: list[Peer] = []
    yield opened
    for peer in opened:
        peer.close()


def greeted(gw: RunningGateway, peers: list[Peer]) -> Peer:
    peer = Peer(gw)
    peers.append(peer)
    assert peer.reply().startswith(b"220 ")
    return peer


def request(email_id: str, *, size: int = 0) -> bytes:
    """A request email; `size` pads its body with lines of text to about that many bytes."""
    body = request_body(
        [("keyid", "demo"), ("num", "0601020304"), ("sms", "Bonjour"), ("emailId", email_id)]
    )
    padding = "".join("x" * 98 + "\r\n" for _ in range(size // 100))
    text = (
        "From: app@example.com\r\nTo: sendsms@isendpro-api.com\r\nSubject: envoi\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body.replace("\n", "\r\n") + padding
    )
    return text.encode()


def in_data(gw: RunningGateway, peers: list[Peer], email_id: str) -> Peer:
    """A client in a DATA transaction: every line of its email sent but the final dot."""
    peer = greeted(gw, peers)
    assert peer.command(b"EHLO holder.example").startswith(b"250 ")
    assert peer.command(b"MAIL FROM:<app@example.com>").startswith(b"250 ")
    assert peer.command(b"RCPT TO:<sendsms@isendpro-api.com>").startswith(b"250 ")
    assert peer.command(b"DATA").startswith(b"354 ")
    peer.sock.sendall(request(email_id))
    return peer


def send(gw: RunningGateway, email_id: str, *, size: int = 0) -> str:
    """A real client (smtplib) sends a request; the gateway's final answer."""
    return gw.send(request(email_id, size=size), mail_from="app@example.com")


# --- at smtp.max_connections ----------------------------------------------------------------


@pytest.mark.mail2sms(config={"smtp": {"max_connections": 12}})
def test_at_the_cap_idle_connections_are_shed_oldest_first_for_new_clients(
    mail2sms_gateway: RunningGateway, peers: list[Peer]
) -> None:
    gw = mail2sms_gateway
    held = [in_data(gw, peers, str(next(_email_ids))) for _ in range(2)]
    idle: list[Peer] = []
    for n in range(10):
        peer = greeted(gw, peers)
        if n % 2:  # every other one keeps talking, without a transaction
            assert peer.command(b"EHLO busy.example").startswith(b"250 ")
            assert peer.command(b"NOOP").startswith(b"250 ")
        idle.append(peer)

    with ExitStack() as clients:
        for n in range(3):  # each new client stays connected: the next one needs a slot too
            email_id = str(next(_email_ids))
            started = time.monotonic()
            client = clients.enter_context(smtplib.SMTP(gw.smtp_host, gw.smtp_port, timeout=10))
            client.sendmail("app@example.com", [gw.address], request(email_id))
            assert time.monotonic() - started < 3
            assert len(gw.sms(email_id=email_id)) == 1
            assert idle[n].reply().startswith(b"421 4.7.0 ")
            assert idle[n].reply() == b""  # and closed

    assert idle[3].command(b"NOOP").startswith(b"250 ")
    for peer in held:  # the transactions were kept whole
        peer.sock.sendall(b".\r\n")
        assert peer.reply().startswith(b"250 2.0.0 OK")


@pytest.mark.mail2sms(config={"smtp": {"max_connections": 3}})
def test_connections_in_a_transaction_are_never_shed(
    mail2sms_gateway: RunningGateway, peers: list[Peer]
) -> None:
    gw = mail2sms_gateway
    after_mail = greeted(gw, peers)
    assert after_mail.command(b"HELO holder.example").startswith(b"250 ")
    assert after_mail.command(b"MAIL FROM:<app@example.com>").startswith(b"250 ")
    held = [in_data(gw, peers, str(next(_email_ids))) for _ in range(2)]

    with pytest.raises(smtplib.SMTPConnectError) as refused:
        send(gw, str(next(_email_ids)))
    assert refused.value.smtp_code == 421

    for peer in held:
        peer.sock.sendall(b".\r\n")
        assert peer.reply().startswith(b"250 2.0.0 OK")
    assert after_mail.command(b"RCPT TO:<sendsms@isendpro-api.com>").startswith(b"250 ")


@pytest.mark.mail2sms(config={"smtp": {"max_connections": 2, "starttls": True}})
def test_starttls_sessions_give_their_slot_back(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for _ in range(4):
        with smtplib.SMTP(gw.smtp_host, gw.smtp_port, timeout=10) as client:
            client.starttls(context=context)
            assert client.noop()[0] == 250
    # The gateway sees each hang-up a moment after the client: a slot may take that long.
    until = time.monotonic() + 5
    while True:
        try:
            assert send(gw, str(next(_email_ids))).startswith("250 ")
            break
        except smtplib.SMTPConnectError as exc:
            assert exc.smtp_code == 421
            assert time.monotonic() < until, "the STARTTLS sessions kept their slots"


# --- session length and RCPT ------------------------------------------------------------------


@pytest.mark.mail2sms(config={"smtp": {"max_session_seconds": 1.0}})
def test_a_session_is_closed_with_421_at_its_maximum_length(
    mail2sms_gateway: RunningGateway, peers: list[Peer]
) -> None:
    started = time.monotonic()
    peer = greeted(mail2sms_gateway, peers)
    assert peer.command(b"EHLO chatty.example").startswith(b"250 ")
    while True:  # a NOOP every 0.2 s: never idle, so smtp.timeout plays no part
        answer = peer.command(b"NOOP") if peer.silent_for(0.2) else peer.reply()
        if not answer.startswith(b"250 "):
            break
        assert time.monotonic() - started < 5, "the session was never cut"
    assert answer.startswith(b"421 4.4.2 ")
    assert 1.0 <= time.monotonic() - started < 3
    assert peer.reply() == b""


@pytest.mark.mail2sms(config={"smtp": {"max_session_seconds": 1.0}})
def test_an_email_being_received_when_the_session_ends_is_answered_first(
    mail2sms_gateway: RunningGateway, peers: list[Peer]
) -> None:
    gw = mail2sms_gateway
    email_id = str(next(_email_ids))
    peer = in_data(gw, peers, email_id)
    assert peer.silent_for(1.5)
    peer.sock.sendall(b".\r\n")
    assert peer.reply().startswith(b"250 2.0.0 OK")
    assert peer.reply().startswith(b"421 4.4.2 ")
    assert len(gw.sms(email_id=email_id)) == 1


@pytest.mark.mail2sms(config={"smtp": {"max_recipients_per_transaction": 5}})
def test_rcpt_beyond_the_transaction_cap_gets_421_and_the_connection_closes(
    mail2sms_gateway: RunningGateway, peers: list[Peer]
) -> None:
    peer = greeted(mail2sms_gateway, peers)
    assert peer.command(b"EHLO many.example").startswith(b"250 ")
    assert peer.command(b"MAIL FROM:<app@example.com>").startswith(b"250 ")
    for n in range(5):
        address = b"sendsms@isendpro-api.com" if n % 2 else b"other@elsewhere.test"
        assert peer.command(b"RCPT TO:<" + address + b">")[:1] in (b"2", b"5")
    assert peer.command(b"RCPT TO:<sendsms@isendpro-api.com>").startswith(b"421 4.5.3 ")
    assert peer.reply() == b""


@pytest.mark.mail2sms(
    config={"smtp": {"max_recipients_per_transaction": 5, "max_recipients_per_session": 7}}
)
def test_rcpt_beyond_the_session_cap_gets_421_and_the_connection_closes(
    mail2sms_gateway: RunningGateway, peers: list[Peer]
) -> None:
    peer = greeted(mail2sms_gateway, peers)
    assert peer.command(b"EHLO many.example").startswith(b"250 ")
    for count in (4, 3):
        assert peer.command(b"MAIL FROM:<app@example.com>").startswith(b"250 ")
        for _ in range(count):
            assert peer.command(b"RCPT TO:<sendsms@isendpro-api.com>").startswith(b"250 ")
        assert peer.command(b"RSET").startswith(b"250 ")
    assert peer.command(b"MAIL FROM:<app@example.com>").startswith(b"250 ")
    assert peer.command(b"RCPT TO:<sendsms@isendpro-api.com>").startswith(b"421 4.5.3 ")
    assert peer.reply() == b""


# --- half-closed clients ----------------------------------------------------------------------


def test_a_pipelining_client_that_half_closes_gets_every_answer(
    mail2sms_gateway: RunningGateway, peers: list[Peer]
) -> None:
    gw = mail2sms_gateway
    email_id = str(next(_email_ids))
    peer = greeted(gw, peers)
    peer.sock.sendall(
        b"EHLO pipelining.example\r\nMAIL FROM:<app@example.com>\r\n"
        b"RCPT TO:<sendsms@isendpro-api.com>\r\nDATA\r\n"
        + request(email_id)
        + b".\r\nQUIT\r\n"
    )
    peer.sock.shutdown(socket.SHUT_WR)
    answers = []
    while answer := peer.reply():
        answers.append(answer[:4])
    assert answers == [b"250 ", b"250 ", b"250 ", b"354 ", b"250 ", b"221 "]
    assert len(gw.emails(email_id=email_id)) == 1
    assert len(gw.sms(email_id=email_id)) == 1


def test_a_client_that_half_closes_without_quit_is_answered_then_closed(
    mail2sms_gateway: RunningGateway, peers: list[Peer]
) -> None:
    peer = greeted(mail2sms_gateway, peers)
    peer.sock.sendall(b"EHLO pipelining.example\r\nNOOP\r\n")
    peer.sock.shutdown(socket.SHUT_WR)
    assert [peer.reply()[:4], peer.reply()[:4], peer.reply()] == [b"250 ", b"250 ", b""]


# --- the message bytes held at once -----------------------------------------------------------


@pytest.mark.mail2sms(
    config={"smtp": {"max_message_size": 100_000, "max_inflight_bytes": 150_000}}
)
def test_data_beyond_the_inflight_budget_gets_451_until_room_is_made(
    mail2sms_gateway: RunningGateway, peers: list[Peer]
) -> None:
    gw = mail2sms_gateway
    first = str(next(_email_ids))
    holder = greeted(gw, peers)
    assert holder.command(b"EHLO holder.example").startswith(b"250 ")
    assert holder.command(b"MAIL FROM:<app@example.com>").startswith(b"250 ")
    assert holder.command(b"RCPT TO:<sendsms@isendpro-api.com>").startswith(b"250 ")
    assert holder.command(b"DATA").startswith(b"354 ")
    holder.sock.sendall(request(first, size=90_000))  # held: its final dot is not sent yet

    second = str(next(_email_ids))
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(gw, second, size=90_000)
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error.startswith(b"4.3.1 ")

    third = str(next(_email_ids))
    other = greeted(gw, peers)
    assert other.command(b"EHLO other.example").startswith(b"250 ")
    for expected in (b"451 4.3.1 ", b"250 2.0.0 OK"):
        assert other.command(b"MAIL FROM:<app@example.com>").startswith(b"250 ")
        assert other.command(b"RCPT TO:<sendsms@isendpro-api.com>").startswith(b"250 ")
        assert other.command(b"DATA").startswith(b"354 ")
        assert other.command(request(third, size=90_000) + b".").startswith(expected)
        if expected.startswith(b"451"):  # the refused message was read to its end
            holder.sock.sendall(b".\r\n")
            assert holder.reply().startswith(b"250 2.0.0 OK")

    assert send(gw, second, size=90_000).startswith("250 ")
    assert {e["email_id"] for e in gw.emails()} == {first, second, third}
