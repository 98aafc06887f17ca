from __future__ import annotations

import sys
import threading
import time

import pytest

from sekisho.errors import ErrorCode, SekishoError
from sekisho.ratelimits import RateLimits
from sekisho.settings import Settings


def test_every_window_counts() -> None:
    limits = RateLimits(Settings(limit_sends_per_address="3/minute;4/hour"))
    for _ in range(3):
        limits.hit(limits.sends_per_address, "a@example.com")
    with pytest.raises(SekishoError) as refused:
        limits.hit(limits.sends_per_address, "a@example.com")
    assert refused.value.code is ErrorCode.rate_limited
    assert refused.value.retry_after is not None
    assert refused.value.retry_after > 0
    limits.hit(limits.sends_per_address, "b@example.com")


def test_keys_are_independent() -> None:
    limits = RateLimits(Settings(limit_verify_per_ip="1/minute"))
    limits.hit(limits.verify_per_ip, "192.0.2.1")
    limits.hit(limits.verify_per_ip, "192.0.2.2")
    with pytest.raises(SekishoError):
        limits.hit(limits.verify_per_ip, "192.0.2.1")


def test_concurrent_hits_never_fail_in_memory() -> None:
    """The memory storage's expiry timer, restarted by hits from many threads at the
    moment it has stopped, must not be started twice (the 500 of issue 8). Each round
    lets the one-shot 10 ms timer stop, then releases 16 threads at once; threads switch
    as often as the interpreter allows, to reach the race without a debugger."""
    limits = RateLimits(Settings(limit_sends_global="100000000/hour"))
    errors: list[BaseException] = []

    def hit(start: threading.Barrier) -> None:
        start.wait()
        try:
            limits.hit(limits.sends_global)
        except BaseException as error:
            errors.append(error)

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(300):
            time.sleep(0.02)
            start = threading.Barrier(16)
            threads = [threading.Thread(target=hit, args=(start,)) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        sys.setswitchinterval(switching)
    assert errors == []
