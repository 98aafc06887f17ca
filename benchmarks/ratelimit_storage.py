"""The in-memory rate-limit storage's CPU per request when requests are spaced out.

``limits``' own ``MemoryStorage`` starts a ``threading.Timer`` thread for its expiry at
the first hit after every quiet 10 ms; Sekisho's ``HousekeptMemoryStorage`` expires
from one long-lived thread once a second (``sekisho/ratelimits.py``). Each round is one
request's hits (``--hits``, three as an email sign-in request has), under one lock as
``RateLimits`` takes it, then a pause of ``--gap`` seconds, as between the requests of
a server that is not saturated. CPU is the whole process's (``getrusage``: every
thread, so the timer threads count), per round, minus what the pauses alone cost.

    .venv/bin/python -m benchmarks.ratelimit_storage [--gap 0.02] [--rounds 200]

Prints, for each of ``--repeats`` alternating runs, microseconds of CPU per round for
each storage; then the medians.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import threading
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from sekisho.ratelimits import HousekeptMemoryStorage


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pauses(rounds: int, gap: float) -> float:
    """CPU per round of the pauses alone (waking up from each sleep)."""
    start = _cpu_seconds()
    for _ in range(rounds):
        time.sleep(gap)
    return (_cpu_seconds() - start) / rounds


def _rounds(storage: MemoryStorage, lock: threading.Lock, options: argparse.Namespace) -> float:
    """CPU per round with ``storage``: ``--hits`` hits, each on a limit of its own and
    one of 50 keys (addresses), then the pause."""
    limiter = MovingWindowRateLimiter(storage)
    items = [parse("1000000/hour") for _ in range(options.hits)]
    start = _cpu_seconds()
    for round_number in range(options.rounds):
        with lock:
            for number, item in enumerate(items):
                limiter.hit(item, f"limit-{number}", f"key-{round_number % 50}")
        time.sleep(options.gap)
    rounds: int = options.rounds
    return (_cpu_seconds() - start) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--gap", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--hits", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    if options.gap <= 0 or options.rounds < 1 or options.hits < 1 or options.repeats < 1:
        parser.error("--gap above 0; --rounds, --hits and --repeats at least 1")
    pause = _pauses(options.rounds, options.gap)
    print(f"pauses alone: {pause * 1e6:.0f} us of CPU per round (subtracted below)")
    results: dict[str, list[float]] = {"limits MemoryStorage": [], "HousekeptMemoryStorage": []}
    for repeat in range(options.repeats):
        for name in results:
            lock = threading.Lock()
            storage = MemoryStorage() if name.startswith("limits") else HousekeptMemoryStorage(lock)
            spent = (_rounds(storage, lock, options) - pause) * 1e6
            results[name].append(spent)
            print(f"run {repeat + 1}, {name}: {spent:.0f} us per round")
    for name, runs in results.items():
        print(f"median, {name}: {statistics.median(runs):.0f} us per round")


if __name__ == "__main__":
    main()
