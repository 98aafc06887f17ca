from __future__ import annotations

import gc
import sys
import threading
import time

import pytest
from limits import parse
from limits.strategies import MovingWindowRateLimiter

from sekisho.errors import ErrorCode, SekishoError
from sekisho.ratelimits import HousekeptMemoryStorage, RateLimits
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


def _timers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)]


def test_hits_after_quiet_spells_start_no_thread() -> None:
    """limits' own memory storage starts a timer thread for the first hit after every
    quiet 10 ms; with its housekeeper alive, the hits start none."""
    limits = RateLimits(Settings(limit_verify_per_ip="1000/hour"))
    limits.hit(limits.verify_per_ip, "192.0.2.1")
    before = set(_timers())
    started: list[threading.Thread] = []
    for _ in range(5):
        time.sleep(0.03)
        limits.hit(limits.verify_per_ip, "192.0.2.1")
        started += [timer for timer in _timers() if timer not in before]
    assert started == []


def test_the_housekeeper_drops_expired_hits_and_ends_with_its_storage() -> None:
    lock = threading.Lock()
    storage = HousekeptMemoryStorage(lock, every=0.05)
    limiter = MovingWindowRateLimiter(storage)
    item = parse("1/second")
    assert limiter.hit(item, "key")
    assert not limiter.hit(item, "key")
    assert storage.events["LIMITER/key/1/1/second"]
    deadline = time.monotonic() + 5
    while storage.events["LIMITER/key/1/1/second"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert storage.events["LIMITER/key/1/1/second"] == []  # expired by the housekeeper
    assert limiter.hit(item, "key")
    housekeeper = storage.timer
    assert housekeeper.is_alive()
    del limiter, storage
    gc.collect()
    housekeeper.join(timeout=5)
    assert not housekeeper.is_alive()


def test_expiry_frees_memory_only() -> None:
    """A moving window admits and refuses by its hits' timestamps: dropping expired hits
    (however late) does not change a decision. Attempts 0.15 s apart: two hits are never
    within a few ms of the 1 s window apart, where timing jitter could tip one."""
    lock = threading.Lock()
    kept = MovingWindowRateLimiter(HousekeptMemoryStorage(lock, every=3600))
    swept_storage = HousekeptMemoryStorage(threading.Lock(), every=3600)
    swept = MovingWindowRateLimiter(swept_storage)
    item = parse("2/second")
    decisions: tuple[list[bool], list[bool]] = ([], [])
    for step in range(12):
        for limiter, made in zip((kept, swept), decisions, strict=True):
            made.append(limiter.hit(item, "key"))
        if step % 3 == 2:
            swept_storage.expire()
        time.sleep(0.15)
    assert decisions[0] == decisions[1]
    assert True in decisions[0]
    assert False in decisions[0]
