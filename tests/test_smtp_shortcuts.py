"""What the SMTP listener saves of aiosmtpd's work (address readings, its __init__) is exactly
what aiosmtpd would have done."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from types import MethodType

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
