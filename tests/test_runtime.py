"""runtime.settle: the interpreter's settings of the gateway's long-running processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import uvloop

from gateway import runtime

# Run in a child: the settings are the interpreter's own, and pytest's must stay as they are.
CHILD = """
import gc, sys, weakref
from gateway import runtime

before = gc.get_threshold()
runtime.settle()
print(gc.get_freeze_count(), *gc.get_threshold(), *before[1:], sys.getswitchinterval())

class Node:
    pass

one, two = Node(), Node()
one.other, two.other = two, one
gone = weakref.ref(one)
del one, two
gc.collect()
print(gone() is None)
"""


def test_settle_freezes_what_exists_collects_the_young_less_often_and_switches_sooner() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split("\n")
    frozen, young, middle, old, middle_before, old_before = map(int, out[0].split()[:6])
    assert frozen > 1000  # the modules' objects, out of the collector's sight
    assert young == 10_000
    assert (middle, old) == (middle_before, old_before)
    assert float(out[0].split()[6]) == 0.001  # seconds
    assert out[1] == "True"  # a cycle made afterwards is still collected


def test_the_event_loop_is_asyncio_s_unless_uvloop_is_named() -> None:
    for name, kind in (("asyncio", asyncio.BaseEventLoop), ("uvloop", uvloop.Loop)):
        loop = runtime.loop_factory(name)()
        try:
            assert isinstance(loop, kind)
            assert isinstance(loop, uvloop.Loop) == (name == "uvloop")
        finally:
            loop.close()
