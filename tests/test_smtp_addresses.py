"""The gateway's remembered reading of MAIL FROM / RCPT TO addresses is aiosmtpd's, exactly."""

from __future__ import annotations

import asyncio

import pytest
from aiosmtpd.smtp import SMTP

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


@pytest.mark.parametrize("local_part_limit", [0, 64])
async def test_the_same_reading_as_aiosmtpd_hit_or_miss(local_part_limit: int) -> None:
    loop = asyncio.get_running_loop()
    settings = load_settings(None).smtp
    ours = gateway_smtp._GatewaySMTP(
        gateway_smtp._Listener(settings),
        None,
        False,
        gateway_smtp.Handler(None, settings.gateway_addresses),  # type: ignore[arg-type]
        loop=loop,
    )
    theirs = SMTP(gateway_smtp.Handler(None, ()), loop=loop)  # type: ignore[arg-type]
    ours.local_part_limit = theirs.local_part_limit = local_part_limit
    gateway_smtp._ADDRESSES.clear()
    for round_ in ("first (parsed)", "second (remembered)"):
        for arg in ARGS:
            assert ours._getaddr(arg) == theirs._getaddr(arg), (round_, arg)
    assert gateway_smtp._ADDRESSES  # the common shapes were remembered


async def test_the_memory_stays_bounded() -> None:
    loop = asyncio.get_running_loop()
    settings = load_settings(None).smtp
    ours = gateway_smtp._GatewaySMTP(
        gateway_smtp._Listener(settings),
        None,
        False,
        gateway_smtp.Handler(None, ()),  # type: ignore[arg-type]
        loop=loop,
    )
    for i in range(gateway_smtp._ADDRESSES_KEPT + 500):
        expected = (f"user{i}@example.com", f"SIZE={i}")
        assert ours._getaddr(f"<user{i}@example.com> SIZE={i}") == expected
    assert len(gateway_smtp._ADDRESSES) == gateway_smtp._ADDRESSES_KEPT


async def test_generated_arguments_read_the_same() -> None:
    # Pieces of addresses and parameters, shuffled deterministically: a remembered reading
    # that diverged from aiosmtpd's on any of them would show here.
    import random

    loop = asyncio.get_running_loop()
    settings = load_settings(None).smtp
    ours = gateway_smtp._GatewaySMTP(
        gateway_smtp._Listener(settings),
        None,
        False,
        gateway_smtp.Handler(None, ()),  # type: ignore[arg-type]
        loop=loop,
    )
    theirs = SMTP(gateway_smtp.Handler(None, ()), loop=loop)  # type: ignore[arg-type]
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
