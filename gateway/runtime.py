"""The interpreter's settings for the gateway's long-running processes (serve, the writer
process): the garbage collector and the GIL's switch interval; and the event loop the gateway
runs on (runtime.event_loop).

Why, measured:
- The collector (the 500-recipient load, `bench.run --phases throughput`): with CPython's
  defaults each process ran a full collection every few hundred emails, going through every
  object it holds — the modules, SQLAlchemy's compiled statements, the settings — to find the
  few cycles traffic makes: 31 ms each in the writer process (~1 ms an email), 46 ms each on
  the event loop (a pause for every client). Both now only go through what traffic allocated.
- The switch interval (`bench.run --quick --phases abuse`, a party polling 1,000 emails of 500
  results): every database read hops to an aiosqlite thread and back, and each hop waited up
  to CPython's 5 ms for the GIL while the event loop worked on the big page: `/healthz` (four
  hops) answered in 106–124 ms at p50, 31–38 ms with 1 ms. No throughput change was
  measurable (intake's hot path has no second thread in this process).
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable

# Allocations (less deallocations) between two collections of the youngest generation;
# CPython's 700 meant ~6 collections for each 500-recipient request.
YOUNG = 10_000
# Seconds a thread holds the GIL while another waits for it (CPython: 0.005).
SWITCH_INTERVAL = 0.001


def settle() -> None:
    """Once the process has started: what exists now lives as long as the process, so it leaves
    the collector's sight (gc.freeze), and the youngest generation is collected less often
    (cycles made later are still collected); a thread waiting for the GIL gets it sooner."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)
    sys.setswitchinterval(SWITCH_INTERVAL)


def loop_factory(event_loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the event loop named by runtime.event_loop (config.py checked that uvloop
    can be imported when named): asyncio's own, or uvloop's (README, Performance)."""
    if event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop
