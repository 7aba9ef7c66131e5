"""What the SMTP listener saves of aiosmtpd's work (address readings, its __init__) is exactly
what aiosmtpd would have done."""

from __future__ import annotations

import asyncio
import itertools
import ssl
import weakref
from collections import deque
from types import MethodType

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import smtp as gateway_smtp
from gateway.config import load_settings

ARGS = [
    "<app@example.com>",
    "<app@example.com> SIZE=1234",
    "<app@example.com>  SIZE=1234 BODY=8BITMIME",
    "<app@example.com>\tSIZE=99",
    "<app@example.com>SIZE=99",
    "<app@example.com> (a comment) SIZE=5",
    "<app@example.com>(comment)",
    "  <app@example.com> SIZE=1",
    "\x0b<app@example.com>",
    '<"quoted>local"@example.com> SIZE=1',
    '<"quoted local"@example.com>',
    "<back\\slash@example.com>",
    "<(comment)app@example.com>",
    "<>",
    "<> SIZE=0",
    "<app@example.com",
    "app@example.com",
    "app@example.com> SIZE=3",
    "app@example.com SIZE=3",
    "<<app@example.com>>",
    "<@route:app@example.com>",
    "<app..dots@example.com>",
    "<app@[127.0.0.1]>",
    "<app@example.com>>",
    "<" + "a" * 70 + "@example.com>",
    "<" + "a" * 600 + "@example.com>",
    "<sendsms@isendpro-api.com> NOTIFY=NEVER",
    "<\udcc3\udca9t\udcc3\udca9@example.com>",
    "",
    ">",
    "<x@y> ",
    "<a@b c> SIZE=1",
    "<a@b c>",
    "< > SIZE=1",
    "<a b@c>",
]


def _servers() -> tuple[gateway_smtp._GatewaySMTP, SMTP]:
    """The gateway's SMTP server and aiosmtpd's own, side by side (no connection)."""
    loop = asyncio.get_running_loop()
    settings = load_settings(None).smtp
    handler = gateway_smtp.Handler(None, settings.gateway_addresses)  # type: ignore[arg-type]
    ours = gateway_smtp._GatewaySMTP(
        gateway_smtp._Listener(settings), None, False, handler, loop=loop
    )
    return ours, SMTP(handler, loop=loop)


@pytest.mark.parametrize("local_part_limit", [0, 64])
async def test_the_same_reading_as_aiosmtpd_hit_or_miss(local_part_limit: int) -> None:
    ours, theirs = _servers()
    ours.local_part_limit = theirs.local_part_limit = local_part_limit
    gateway_smtp._ADDRESSES.clear()
    for round_ in ("first (parsed)", "second (remembered)"):
        for arg in ARGS:
            assert ours._getaddr(arg) == theirs._getaddr(arg), (round_, arg)
    assert gateway_smtp._ADDRESSES  # the common shapes were remembered


async def test_the_memory_stays_bounded() -> None:
    ours, _ = _servers()
    for i in range(gateway_smtp._ADDRESSES_KEPT + 500):
        expected = (f"user{i}@example.com", f"SIZE={i}")
        assert ours._getaddr(f"<user{i}@example.com> SIZE={i}") == expected
    assert len(gateway_smtp._ADDRESSES) == gateway_smtp._ADDRESSES_KEPT


async def test_generated_arguments_read_the_same() -> None:
    # Pieces of addresses and parameters, shuffled deterministically: a remembered reading
    # that diverged from aiosmtpd's on any of them would show here.
    import random

    ours, theirs = _servers()
    pieces = ["<", ">", "a", "b.c", "@", "ex.com", " ", "\t", "(c)", '"', "\\", "SIZE=1", "="]
    pieces += [":", ",", "[1.2.3.4]", "é"]
    rng = random.Random(20261201)
    gateway_smtp._ADDRESSES.clear()
    for _ in range(3000):
        arg = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
        if rng.random() < 0.5:
            arg = "<" + rng.choice(["a@ex.com", "b.c@ex.com", "a b@ex.com", ""]) + ">" + arg
        for _ in ("parsed", "remembered"):
            assert _reading(ours, arg) == _reading(theirs, arg), arg


def _reading(server: SMTP, arg: str) -> object:
    """The reading, or the exception aiosmtpd's parser lets out on some inputs ("<")."""
    try:
        return server._getaddr(arg)
    except Exception as exc:
        return type(exc)


# -- the idle timeout's one timer ----------------------------------------------------------------


async def test_the_idle_timer_is_moved_on_not_scheduled_again_unless_sooner() -> None:
    """`_reset_timeout`: a later deadline keeps the one timer (it is set again when it fires
    early, tests/integration/test_hostile.py); a sooner one (aiosmtpd's PROXY wait) replaces it."""
    ours, _ = _servers()
    loop = asyncio.get_running_loop()
    ours._reset_timeout()
    timer = ours._timeout_handle
    assert timer is not None and timer.when() <= loop.time() + ours._timeout_duration
    ours._reset_timeout()
    assert ours._timeout_handle is timer and ours._idle_until >= timer.when()
    ours._reset_timeout(0.5)
    sooner = ours._timeout_handle
    assert sooner is not timer and timer.cancelled()
    assert sooner is not None and sooner.when() <= loop.time() + 0.5
    ours._reset_timeout()  # later again: the sooner timer stays, and moves on when it fires
    assert ours._timeout_handle is sooner
    sooner.cancel()


# -- a connection made from the listener's template -------------------------------------------


@pytest.mark.parametrize("auth", ["off", "any"])
async def test_a_connection_from_the_template_is_the_one_aiosmtpd_makes(auth: str) -> None:
    """Every attribute aiosmtpd's __init__ sets is there with the same value; the method tables
    are bound to the new connection; nothing mutable is shared between two connections."""
    loop = asyncio.get_running_loop()
    settings = load_settings(None, overrides={"smtp": {"auth": auth}}).smtp
    listener = gateway_smtp._Listener(settings)
    handler = gateway_smtp.Handler(None, settings.gateway_addresses)  # type: ignore[arg-type]
    check = gateway_smtp._accept_any if auth == "any" else None

    def connection() -> gateway_smtp._GatewaySMTP:
        return gateway_smtp._GatewaySMTP(
            listener, check, True, handler, hostname="isendpro-api.com", loop=loop
        )

    first, second = connection(), connection()  # aiosmtpd's __init__, then the template
    assert listener.smtp_state is not None
    assert vars(first).keys() == vars(second).keys()
    for name, ours in vars(second).items():
        theirs = vars(first)[name]
        if isinstance(ours, MethodType):
            assert ours.__func__ is theirs.__func__, name
            assert ours.__self__ is (second if theirs.__self__ is first else theirs.__self__)
        elif name in ("_smtp_methods", "_auth_methods", "_handle_hooks"):
            assert ours is not theirs and ours.keys() == theirs.keys(), name
            for key, value in ours.items():
                method = value.method if name == "_auth_methods" else value
                other = theirs[key].method if name == "_auth_methods" else theirs[key]
                assert method.__func__ is other.__func__, (name, key)
                assert method.__self__ is (second if other.__self__ is first else other.__self__)
        elif isinstance(ours, (dict, list, set, deque, asyncio.Future, asyncio.StreamReader)):
            assert ours is not theirs, f"{name} is shared between two connections"
            assert type(ours) is type(theirs), name
        elif isinstance(ours, weakref.ReferenceType):
            assert ours() is not theirs(), name
        else:
            assert ours == theirs, name
    assert second._smtp_methods["MAIL"].__self__ is second
    assert ("LOGIN" in second._auth_methods) is (auth == "any")


# -- EHLO: aiosmtpd's lines in one write ------------------------------------------------------


class _Writes:
    """A connection's writer that keeps each write as it was made."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    async def drain(self) -> None:
        return None


class _NoHooks:
    """A handler without an EHLO hook: aiosmtpd answers EHLO on its own."""


@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("auth", [False, True])
async def test_ehlo_writes_aiosmtpd_s_own_answer_at_once(auth: bool, tls: bool) -> None:
    """The bytes aiosmtpd's own EHLO writes line by line, in one write (less AUTH when the
    gateway offers none); with STARTTLS offered, AUTH waits for TLS, as in aiosmtpd."""
    loop = asyncio.get_running_loop()
    settings = load_settings(None).smtp
    check = gateway_smtp._accept_any if auth else None
    options = {
        "data_size_limit": settings.max_message_size,
        "enable_SMTPUTF8": True,
        "decode_data": False,
        "hostname": "isendpro-api.com",
        "tls_context": ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER) if tls else None,
        "loop": loop,
    }
    handler = gateway_smtp.Handler(None, settings.gateway_addresses)  # type: ignore[arg-type]
    in_clear = auth and not tls
    ours = gateway_smtp._GatewaySMTP(
        gateway_smtp._Listener(settings), check, in_clear, handler, **options
    )
    theirs = SMTP(
        _NoHooks(),
        authenticator=gateway_smtp._credentials,
        auth_exclude_mechanism=() if auth else gateway_smtp.MECHANISMS,
        **options,
    )
    theirs._auth_require_tls = not in_clear
    answers = []
    for server in (ours, theirs):
        writer = _Writes()
        server._writer = writer  # type: ignore[assignment]
        server.session = server._create_session()
        await server.smtp_EHLO("client.example.com")
        answers.append(writer.writes)
        assert server.session.host_name == "client.example.com"
    ours_writes, theirs_writes = answers
    expected = [line for line in theirs_writes if auth or not line.startswith(b"250-AUTH")]
    assert len(theirs_writes) >= 5
    assert ours_writes == [b"".join(expected)]
    assert (b"250-STARTTLS\r\n" in ours_writes[0]) is tls
    assert (b"250-AUTH LOGIN PLAIN\r\n" in ours_writes[0]) is in_clear
    assert ours_writes[0].endswith(b"\r\n250 HELP\r\n")


# -- DATA: the whole lines received read at once -------------------------------------------------

LINE_LIMIT = 40  # small, so that lines over it are cheap to make


class _Ours(gateway_smtp._GatewaySMTP):
    line_length_limit = LINE_LIMIT


class _Theirs(SMTP):
    line_length_limit = LINE_LIMIT


class _Capture:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.contents.append(envelope.content)
        return "250 captured"


class _Answers:
    """A connection's writer that keeps the answers written to it."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, data: bytes) -> None:
        self.lines.append(data.decode().removesuffix("\r\n"))

    async def drain(self) -> None:
        return None


def _in_transaction(server: SMTP) -> _Answers:
    """The server as after HELO, MAIL and RCPT; what it answers from then on."""
    server.session = server._create_session()
    server.session.host_name = "client.example.com"
    server.envelope = server._create_envelope()
    server.envelope.mail_from = "app@example.com"
    server.envelope.rcpt_tos = ["sendsms@isendpro-api.com"]
    answers = _Answers()
    server._writer = answers  # type: ignore[assignment]
    return answers


async def _data_read_by(
    chunks: list[bytes], size_limit: int, budget_left: int | None = None
) -> tuple[list[str], list[bytes], bytes, list[str], list[bytes], bytes]:
    """aiosmtpd's DATA and ours on the same bytes: ours gets them in `chunks`, reading what it
    has before the next one arrives; theirs gets them whole (its reading is line by line).
    `budget_left`: what other messages left of the listener's in-flight budget."""
    loop = asyncio.get_running_loop()
    listener = gateway_smtp._Listener(load_settings(None).smtp)
    if budget_left is not None:
        assert listener.take(listener.settings.max_inflight_bytes - budget_left)
    ours_handler, theirs_handler = _Capture(), _Capture()
    ours = _Ours(
        listener,
        None,
        False,
        ours_handler,
        data_size_limit=size_limit,
        decode_data=False,
        loop=loop,
    )
    theirs = _Theirs(theirs_handler, data_size_limit=size_limit, decode_data=False, loop=loop)
    theirs._reader = asyncio.StreamReader(limit=LINE_LIMIT, loop=loop)
    theirs.transport = asyncio.Transport()  # its loop reads while there is one
    ours_answers, theirs_answers = _in_transaction(ours), _in_transaction(theirs)
    theirs._reader.feed_data(b"".join(chunks))
    await theirs.smtp_DATA("")
    reading = asyncio.create_task(ours.smtp_DATA(""))
    for chunk in chunks:
        ours._input.feed_data(chunk)
        for _ in range(1000):  # until it waits for the next chunk, or is done
            await asyncio.sleep(0)
            if reading.done() or ours._input._waiter is not None:  # type: ignore[attr-defined]
                break
        else:
            pytest.fail("the DATA reading neither waited nor ended")
    await asyncio.wait_for(reading, 5)
    return (
        ours_answers.lines,
        ours_handler.contents,
        bytes(ours._input._buffer),
        theirs_answers.lines,
        theirs_handler.contents,
        bytes(theirs._reader._buffer),  # type: ignore[attr-defined]
    )


_LINES = st.lists(
    st.one_of(
        st.sampled_from([b"", b".", b"..", b".x", b"...", b"\r", b"\n", b"a\rb", b"a\nb", b"."]),
        st.binary(max_size=8),
        st.integers(LINE_LIMIT - 4, LINE_LIMIT + 2).map(lambda n: b"x" * n),
        st.integers(LINE_LIMIT - 4, LINE_LIMIT + 2).map(lambda n: b"." + b"y" * n),
    ).filter(lambda line: b"\r\n" not in line),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    lines=_LINES,
    cuts=st.lists(st.integers(0, 2000), max_size=12),
    size_limit=st.one_of(st.sampled_from([0, 100_000]), st.integers(1, 400)),
    near=st.sampled_from([None, -1, 0, 1]),
)
async def test_a_message_reads_as_aiosmtpd_reads_it_however_it_arrives(
    lines: list[bytes], cuts: list[int], size_limit: int, near: int | None
) -> None:
    message = b"".join(line + b"\r\n" for line in lines)
    if near is not None:  # the size limit at the message's size, or a byte off
        size_limit = max(1, len(message) + near)
    stream = message + b".\r\nNOOP\r\n"
    bounds = sorted({min(cut, len(stream)) for cut in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    (
        ours_pushed,
        ours_content,
        ours_left,
        theirs_pushed,
        theirs_content,
        theirs_left,
    ) = await _data_read_by(chunks, size_limit)
    assert ours_pushed == theirs_pushed
    assert ours_content == theirs_content
    assert ours_left == theirs_left  # a line "." unstuffed ends the message early: both


async def test_a_message_over_the_inflight_budget_is_dropped_whole_lines_or_not() -> None:
    body = b"".join(b"line %d\r\n" % i for i in range(50)) + b".\r\nNOOP\r\n"
    for chunks in ([body], [body[:100], body[100:]], [bytes([b]) for b in body]):
        pushed, contents, left, *_ = await _data_read_by(chunks, 100_000, budget_left=200)
        assert pushed == ["354 End data with <CR><LF>.<CR><LF>", gateway_smtp.TOO_MUCH_IN_FLIGHT]
        assert contents == [] and left == b"NOOP\r\n"
