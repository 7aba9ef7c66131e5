"""Hostile input over real SMTP: each email gets a provider code or a clean 5xx refusal, never a
451 or a crash, and the gateway keeps serving; idle and slow clients cannot starve it."""

from __future__ import annotations

import asyncio
import base64
import itertools
import random
import selectors
import smtplib
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.testing import RunningGateway, fixture_settings
from tests.relay import Relay

SENDER = "app@example.com"
LEGIT = "not@example.com"
_email_ids = itertools.count(9000)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shared_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    """One gateway for the module's hostile bodies, on each backend in turn."""
    folder = tmp_path_factory.mktemp("hostile")
    if request.param == "sqlite":
        yield from _running(f"sqlite+aiosqlite:///{folder / 'g.db'}", folder)
    else:
        with request.getfixturevalue("postgres_server").database() as url:
            yield from _running(url, folder)


def _running(url: str, folder: Path) -> Iterator[RunningGateway]:
    running = RunningGateway(fixture_settings(folder / "g.db", {"database": {"url": url}}))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def gw(shared_gateway: RunningGateway) -> RunningGateway:
    shared_gateway.reset()
    return shared_gateway


def submit(
    gw: RunningGateway, raw: bytes, *, mail_from: str = SENDER, options: tuple[str, ...] = ()
) -> int:
    """The SMTP code the gateway gives the email (250, or the refusal's code)."""
    with smtplib.SMTP(gw.smtp_host, gw.smtp_port, timeout=60) as client:
        try:
            client.sendmail(mail_from, [gw.address], raw, mail_options=list(options))
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code
    return 250


def mail(body: bytes, *, headers: bytes = b"") -> bytes:
    return (
        b"From: app@example.com\r\nTo: sendsms@isendpro-api.com\r\nSubject: envoi\r\n"
        + headers
        + b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        + body
    )


def envoi(email_id: str, *, sms: bytes = b"Bonjour", more: bytes = b"") -> bytes:
    return (
        b"<envoi>\r\n<keyid>demo</keyid>\r\n<num>0601020304</num>\r\n<sms>"
        + sms
        + b"</sms>\r\n<emailId>"
        + email_id.encode()
        + b"</emailId>\r\n<emailAck>ack@example.com</emailAck>\r\n"
        + more
        + b"</envoi>\r\n"
    )


def still_serves(gw: RunningGateway) -> None:
    """An ordinary request right after is applied in full."""
    email_id = str(next(_email_ids))
    assert submit(gw, mail(envoi(email_id))) == 250
    (sms,) = gw.wait_for_sms(1, email_id=email_id)
    assert sms["text"] == "Bonjour"


def only_email(gw: RunningGateway) -> dict[str, Any]:
    (email,) = gw.emails()
    return email


def test_entity_bomb_is_not_expanded(gw: RunningGateway) -> None:
    entities = "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10)
    ).replace("&lol0;", "lol")
    dtd = f'<?xml version="1.0"?>\n<!DOCTYPE envoi [\n{entities}]>\n'.encode()
    email_id = str(next(_email_ids))
    assert submit(gw, mail(dtd + envoi(email_id, sms=b"&lol9;"))) == 250
    assert only_email(gw)["status"] == "processed"
    (sms,) = gw.sms(email_id=email_id)
    assert sms["text"] == "&lol9;"
    still_serves(gw)


def test_external_entities_are_neither_read_nor_fetched(gw: RunningGateway) -> None:
    with socket.create_server(("127.0.0.1", 0)) as trap:
        port = trap.getsockname()[1]
        dtd = (
            "<!DOCTYPE envoi [\n"
            '<!ENTITY xxe SYSTEM "file:///etc/passwd">\n'
            f'<!ENTITY web SYSTEM "http://127.0.0.1:{port}/entity">\n'
            f'<!ENTITY % remote SYSTEM "http://127.0.0.1:{port}/dtd">\n%remote;\n]>\n'
        ).encode()
        email_id = str(next(_email_ids))
        raw = mail(dtd + envoi(email_id, sms=b"&xxe;&web;", more=b"<tracker>&xxe;</tracker>\r\n"))
        assert submit(gw, raw) == 250
        trap.setblocking(False)
        with pytest.raises(BlockingIOError):  # nobody connected to the trap
            trap.accept()
    (sms,) = gw.sms(email_id=email_id)
    assert sms["text"] == "&xxe;&web;"
    everything = repr((gw.emails(), gw.sms(), gw.replies()))
    assert "root:" not in everything
    still_serves(gw)


def _garbage(size: int, seed: int) -> bytes:
    """Random bytes in CRLF-terminated lines of 500 (so SMTP carries them as they are)."""
    data = random.Random(seed).randbytes(size).replace(b"\r", b"\x00").replace(b"\n", b"\x00")
    return b"".join(data[i : i + 500] + b"\r\n" for i in range(0, len(data), 500))


def test_binary_garbage_body_is_refused_with_a_code(gw: RunningGateway) -> None:
    assert submit(gw, mail(_garbage(200_000, seed=1))) == 250
    email = only_email(gw)
    assert (email["status"], email["code"]) == ("refused", 1)
    still_serves(gw)


def test_a_message_that_is_all_garbage_is_recorded_without_reply(gw: RunningGateway) -> None:
    assert submit(gw, _garbage(50_000, seed=2)) == 250
    assert only_email(gw)["status"] in ("refused", "not_processed")
    assert gw.replies() == []
    still_serves(gw)


def test_nul_bytes_in_headers_and_values_are_answered(gw: RunningGateway) -> None:
    email_id = str(next(_email_ids))
    headers = b"X-Nul: a\x00b\r\nMessage-ID: <a\x00b@example.com>\r\n"
    raw = mail(
        envoi(email_id, sms=b"a\x00b", more=b"<tracker>t\x00t</tracker>\r\n"), headers=headers
    ).replace(b"Subject: envoi", b"Subject: nul\x00subject")
    assert submit(gw, raw) == 250
    email = only_email(gw)
    assert (email["status"], email["subject"]) == ("processed", "nulsubject")
    assert [r["code"] for r in email["results"]] == [0]
    assert [(s["text"], s["tracker"]) for s in gw.sms()] == [("ab", "tt")]
    still_serves(gw)


def test_nul_bytes_in_the_body_are_dropped_before_it_is_read(gw: RunningGateway) -> None:
    email_id = str(next(_email_ids))
    body = (
        b"<envoi><keyid>de\x00mo</keyid><num1>06\x0001020304</num1><num2>\x00</num2>"
        b"<sms>x</sms><emailId>" + email_id.encode() + b"\x00</emailId></envoi>\r\n"
    )
    assert submit(gw, mail(body)) == 250
    email = only_email(gw)
    assert (email["status"], email["email_id"]) == ("processed", email_id)
    assert [(r["tel"], r["code"]) for r in email["results"]] == [("0601020304", 0), ("", 6)]
    assert [s["to"] for s in gw.sms()] == ["0601020304"]
    still_serves(gw)


def test_eight_bit_headers_and_envelope_are_read(gw: RunningGateway) -> None:
    email_id = str(next(_email_ids))
    raw = (
        b'From: "Zo\xc3\xab \xff\xfe" <app@example.com>\r\n'
        b"To: =?bogus?Q?x?= sendsms@isendpro-api.com \xe9\r\n"
        b"Subject: \xe9t\xe9 \xc3\xa9t\xc3\xa9 \x80\r\n"
        b"X-Weird-\xe9: \xff\r\n"
        b"Content-Type: text/plain; charset=\xe9\xe9\r\n\r\n" + envoi(email_id)
    )
    assert submit(gw, raw, mail_from="zo\u00eb@example.com", options=("SMTPUTF8",)) == 250
    email = only_email(gw)
    assert email["status"] == "processed"
    assert gw.sms(email_id=email_id) != []
    still_serves(gw)


def test_nul_in_a_base64_body_and_an_encoded_subject_is_answered(gw: RunningGateway) -> None:
    email_id = str(next(_email_ids))
    body = base64.encodebytes(envoi(email_id, sms=b"a\x00b").replace(b"demo", b"de\x00mo"))
    raw = (
        b"From: app@example.com\r\nTo: sendsms@isendpro-api.com\r\n"
        b"Subject: =?utf-8?q?a=00b?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body.replace(b"\n", b"\r\n")
    )
    assert submit(gw, raw) == 250
    assert only_email(gw)["status"] == "processed"
    (sms,) = gw.sms(email_id=email_id)
    assert sms["text"] == "ab"
    still_serves(gw)


def test_nul_in_a_csv_attachment_is_answered(gw: RunningGateway) -> None:
    email_id = str(next(_email_ids))
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = gw.address
    message["Subject"] = "csv"
    message.set_content(envoi(email_id).decode().replace("<num>0601020304</num>", ""))
    message.add_attachment(
        b"0601020304;;a\x00b\r\n06\x0001020305;;c\r\n", "text", "csv", filename="mobiles.csv"
    )
    message.add_attachment(b"Hi [1]\x00!\r\n", "text", "csv", filename="message.csv")
    assert submit(gw, message.as_bytes()) == 250
    assert only_email(gw)["status"] == "processed"
    assert sorted((s["to"], s["text"]) for s in gw.sms()) == [
        ("0601020304", "Hi ab!"),
        ("0601020305", "Hi c!"),
    ]
    still_serves(gw)


def dialogue(gw: RunningGateway, lines: list[bytes]) -> list[bytes]:
    """A raw SMTP conversation, one final reply line per command (banner first)."""
    answers: list[bytes] = []
    with (
        socket.create_connection((gw.smtp_host, gw.smtp_port), timeout=30) as sock,
        sock.makefile("rb") as replies,
    ):
        for line in [b"", *lines]:
            sock.sendall(line)
            answer = replies.readline()
            while answer[3:4] == b"-":
                answer = replies.readline()
            answers.append(answer)
    return answers


@pytest.mark.parametrize(
    ("sender", "status"),
    [
        (b"zo\xe9@example.com", "processed"),
        (b"a\x00b@example.com", "processed"),
        (b"\xff\xfe@\x00", "refused"),
        (b"zo\xc3\xab@example.com", "processed"),
    ],
    ids=["latin1", "nul", "garbage", "utf8"],
)
def test_eight_bit_and_nul_envelope_senders_are_answered(
    gw: RunningGateway, sender: bytes, status: str
) -> None:
    email_id = str(next(_email_ids))
    answers = dialogue(
        gw,
        [
            b"EHLO client.example\r\n",
            b"MAIL FROM:<" + sender + b"> SMTPUTF8\r\n",
            b"RCPT TO:<sendsms@isendpro-api.com>\r\n",
            b"DATA\r\n",
            mail(envoi(email_id)) + b".\r\n",
            b"QUIT\r\n",
        ],
    )
    assert [a[:3] for a in answers] == [b"220", b"250", b"250", b"250", b"354", b"250", b"221"]
    assert only_email(gw)["status"] == status
    still_serves(gw)


@pytest.mark.parametrize(
    "tag",
    [b"<t/>", b"<t>", b"<t>x</t>", b"</t>", b"<!--", b"<envoi>"],
    ids=["empty", "unclosed", "closed", "closing", "comment", "envoi"],
)
def test_a_hundred_thousand_tags_are_bounded(gw: RunningGateway, tag: bytes) -> None:
    email_id = str(next(_email_ids))
    many = b"\r\n".join(tag for _ in range(100_000)) + b"\r\n"
    raw = mail(envoi(email_id, more=many))
    started = time.monotonic()
    assert submit(gw, raw) == 250
    assert time.monotonic() - started < 20
    assert only_email(gw)["status"] in ("processed", "refused")
    still_serves(gw)


def test_a_value_beyond_the_body_limit_is_answered(gw: RunningGateway) -> None:
    email_id = str(next(_email_ids))
    value = b"\r\n".join(b"x" * 76 for _ in range(1_500_000 // 78))
    assert submit(gw, mail(envoi(email_id, sms=value))) == 250
    email = only_email(gw)  # the body is over limits.max_body_chars: no <envoi> read
    assert (email["status"], email["code"]) == ("refused", 1)
    still_serves(gw)


def test_a_long_value_is_cut_and_gets_a_length_code(gw: RunningGateway) -> None:
    email_id = str(next(_email_ids))
    value = b"\r\n".join(b"x" * 76 for _ in range(500_000 // 78))
    assert submit(gw, mail(envoi(email_id, sms=value))) == 250
    email = only_email(gw)
    assert email["status"] == "processed"
    assert [r["code"] for r in email["results"]] == [34]
    assert any("cut" in warning for warning in email["warnings"])
    still_serves(gw)


def test_a_line_over_the_smtp_limit_is_refused_cleanly(gw: RunningGateway) -> None:
    email_id = str(next(_email_ids))
    assert submit(gw, mail(envoi(email_id, sms=b"x" * 5000))) == 500
    assert gw.emails() == []
    still_serves(gw)


# --- reply addresses ----------------------------------------------------------------------------

HOSTILE_ADDRESSES = [
    b"ack@x.com\r\nBcc: victim@evil.test",
    b"ack@x.com&#13;&#10;Bcc: victim@evil.test",
    b"ack@x.com&#10;&#10;victim@evil.test",
    b"a@x.com, b@y.com",
    b"a@x.com;b@y.com",
    b"a@x.com b@y.com",
    b'"x" <a@x.com>',
    b"&quot;x&quot; &lt;a@x.com&gt;",
    b"<a@x.com>",
    b"victim@evil.test\r\n.\r\nMAIL FROM:<x@x.com>",
    b"ack@x.com%0D%0ABcc:victim@evil.test",
    b"ack@x.com&#0;victim@evil.test",
    b"ack@ex\xd0\xb0mple.com",
    b"a@x.com\xe2\x80\xa8Bcc: victim@evil.test",
]


async def test_reply_addresses_with_header_text_get_no_reply_and_a_warning(
    tmp_path: Path,
) -> None:
    relay = await Relay().start()
    settings = fixture_settings(
        tmp_path / "g.db", {"relay": {"host": "127.0.0.1", "port": relay.port, "backoff": 0.05}}
    )
    gw = await asyncio.to_thread(RunningGateway, settings)
    try:
        sent: dict[str, str] = {}
        for n, hostile in enumerate(HOSTILE_ADDRESSES):
            email_id = str(8000 + n)
            ack, not_ = (hostile, LEGIT.encode()) if n % 2 == 0 else (b"ack@example.com", hostile)
            sent[email_id] = "ack" if n % 2 == 0 else "not"
            body = (
                b"<envoi><keyid>demo</keyid><num>0601020304</num><sms>x</sms>"
                b"<emailId>" + email_id.encode() + b"</emailId>"
                b"<emailAck>" + ack + b"</emailAck><emailNot>" + not_ + b"</emailNot></envoi>\r\n"
            )
            assert await asyncio.to_thread(submit, gw, mail(body)) == 250
        received = await relay.wait_for(len(sent), timeout=20)
        replies = await asyncio.to_thread(gw.replies, limit=1000)
        emails = await asyncio.to_thread(gw.emails, limit=1000)
    finally:
        await asyncio.to_thread(gw.stop)
        await relay.stop()
    legit = {LEGIT, "ack@example.com"}
    assert len(replies) == len(sent)
    for reply in replies:
        assert reply["kind"] != sent[reply["email_id"]], reply
        assert reply["to"] in legit
    for email in emails:
        assert email["status"] == "processed"
        bad = sent[email["email_id"]]
        assert any(w.startswith(f"email{bad.capitalize()} ") for w in email["warnings"]), email
    assert len(received) == len(sent)
    for message in received:
        assert set(message.rcpt_tos) <= legit
        parsed = message_from_bytes(message.content, policy=policy.default)
        assert parsed["To"] in legit
        assert parsed["Bcc"] is None and parsed["Cc"] is None
        assert b"victim" not in message.content


# --- idle and slow clients ----------------------------------------------------------------------


def first_lines(sockets: list[socket.socket], timeout: float) -> list[bytes]:
    """What each socket received up to its first CRLF (b"" when closed first), within timeout."""
    lines = {sock: b"" for sock in sockets}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        until = time.monotonic() + timeout
        while selector.get_map() and (left := until - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                chunk = sock.recv(4096)
                lines[sock] += chunk
                if not chunk or b"\r\n" in lines[sock]:
                    selector.unregister(sock)
    return [lines[sock] for sock in sockets]


@pytest.mark.mail2sms(config={"smtp": {"max_connections": 50}})
def test_idle_connections_beyond_the_cap_are_shed_and_a_real_client_gets_through_at_once(
    mail2sms_gateway: RunningGateway,
) -> None:
    gw = mail2sms_gateway
    idle: list[socket.socket] = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection((gw.smtp_host, gw.smtp_port), timeout=10))
        greetings = first_lines(idle, timeout=10)
        assert all(line.startswith((b"220 ", b"421 4.7.0 ")) for line in greetings), greetings

        # Without a transaction, the oldest idle connection makes room: no 421, no waiting
        # for smtp.timeout to cut them.
        email_id = str(next(_email_ids))
        started = time.monotonic()
        assert submit(gw, mail(envoi(email_id))) == 250
        assert time.monotonic() - started < 3
        assert len(gw.sms(email_id=email_id)) == 1
    finally:
        for sock in idle:
            sock.close()


def trickle(sock: socket.socket, payload: bytes, *, every: float = 0.1) -> float | None:
    """Send `payload` one byte per `every` seconds; the seconds until the gateway hung up, or
    None if it never did."""
    started = time.monotonic()
    for byte in payload:
        ready = selectors.DefaultSelector()
        with ready:
            ready.register(sock, selectors.EVENT_READ)
            if ready.select(every):
                try:
                    if sock.recv(4096) == b"":
                        return time.monotonic() - started
                except OSError:
                    return time.monotonic() - started
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - started
    return None


def _expect(sock: socket.socket, command: bytes, code: bytes) -> None:
    if command:
        sock.sendall(command)
    answer = sock.recv(4096)
    assert answer.startswith(code), (command, answer)


def hung_up_within(sock: socket.socket, seconds: float) -> float | None:
    """The seconds until the gateway hung up, if it did within `seconds` (nothing is sent)."""
    started = time.monotonic()
    with selectors.DefaultSelector() as ready:
        ready.register(sock, selectors.EVENT_READ)
        while (left := started + seconds - time.monotonic()) > 0:
            if ready.select(left):
                assert sock.recv(4096) == b"", "the gateway said something unasked"
                return time.monotonic() - started
    return None


@pytest.mark.mail2sms(config={"smtp": {"timeout": 1.0}})
def test_the_idle_timeout_counts_from_the_last_command(mail2sms_gateway: RunningGateway) -> None:
    """smtp.timeout: a session is cut that long after its last command, not after its first
    (the timer is moved on lazily, `_GatewaySMTP._reset_timeout`): a client busy for longer
    than the timeout stays, and is cut once it goes quiet."""
    gw = mail2sms_gateway
    with socket.create_connection((gw.smtp_host, gw.smtp_port), timeout=10) as sock:
        _expect(sock, b"", b"220")
        started = time.monotonic()
        _expect(sock, b"HELO busy.example\r\n", b"250")
        while time.monotonic() - started < 2.0:  # twice the timeout, a command every 0.4 s
            assert hung_up_within(sock, 0.4) is None, "a busy client was cut"
            _expect(sock, b"NOOP\r\n", b"250")
        cut_after = hung_up_within(sock, 10.0)
    assert cut_after is not None, "the quiet client was never cut"
    assert 0.9 <= cut_after < 2.0
    still_serves(gw)


@pytest.mark.parametrize("phase", ["command", "data"])
@pytest.mark.mail2sms(config={"smtp": {"timeout": 1.0}})
def test_a_client_sending_one_byte_per_100_ms_is_cut_by_the_timeout(
    mail2sms_gateway: RunningGateway, phase: str
) -> None:
    gw = mail2sms_gateway
    with socket.create_connection((gw.smtp_host, gw.smtp_port), timeout=10) as sock:
        _expect(sock, b"", b"220")
        if phase == "command":
            payload = b"EHLO " + b"a" * 100 + b"\r\n"
        else:
            _expect(sock, b"HELO slow.example\r\n", b"250")
            _expect(sock, b"MAIL FROM:<app@example.com>\r\n", b"250")
            _expect(sock, b"RCPT TO:<sendsms@isendpro-api.com>\r\n", b"250")
            _expect(sock, b"DATA\r\n", b"354")
            payload = mail(envoi("1", sms=b"y" * 100)) + b".\r\n"
        cut_after = trickle(sock, payload)
    assert cut_after is not None, "the slow client was never cut"
    assert cut_after < 3.0
    assert gw.emails() == []
    still_serves(gw)
