"""The garbage collector's settings for the gateway's long-running processes (serve, the writer
process).

Why (measured under the 500-recipient load, `bench.run --phases throughput`): with CPython's
defaults each process ran a full collection every few hundred emails, going through every
object it holds — the modules, SQLAlchemy's compiled statements, the settings — to find the
few cycles traffic makes: 31 ms each in the writer process (~1 ms an email), 46 ms each on the
event loop (a pause for every client). Both now only go through what traffic allocated.
"""

from __future__ import annotations

import gc

# Allocations (less deallocations) between two collections of the youngest generation;
# CPython's 700 meant ~6 collections for each 500-recipient request.
YOUNG = 10_000


def settle() -> None:
    """Once the process has started: what exists now lives as long as the process, so it leaves
    the collector's sight (gc.freeze), and the youngest generation is collected less often.
    Cycles made later are still collected."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)
