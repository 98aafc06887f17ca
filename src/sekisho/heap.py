"""The cyclic garbage collector, set for a long-running server process.

What a process builds as it starts (modules, the app and its routes, schemas, compiled
statements: about 210,000 objects) lives as long as the process, yet CPython's
collector walks all of it at every full collection. Under a passkey sign-in load the
collector took 19 to 32 % of the web process's CPU, most of it in full collections of
135 to 290 ms each, during which no request was answered (docs/benchmarks.md, "The
garbage collector"). :func:`settle`:

- collects once, then moves every object that survived into the permanent generation
  (``gc.freeze``), which collections no longer walk;
- raises the youngest generation's threshold from 700 to :data:`YOUNGEST_THRESHOLD`
  net allocations, so a collection rarely runs while requests are in flight and fewer
  of their short-lived objects are promoted into the generations that full collections
  walk. Almost every object of a request is freed by reference counting; the collector
  is there for cycles, which still get collected.

Only for a process that runs one app until it ends (``sekisho serve``, each worker of
``sekisho.asgi``, the mail worker): what is frozen is never collected, so a process that
builds app after app (the test suite) must not freeze.
"""

from __future__ import annotations

import gc

#: Net container allocations before the youngest generation is collected (CPython's
#: default is 700); the older generations keep their defaults.
YOUNGEST_THRESHOLD = 10_000


def settle() -> None:
    """Freeze what the process has built so far and space out young collections."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_THRESHOLD, middle, oldest)
