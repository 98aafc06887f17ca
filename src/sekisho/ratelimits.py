"""Rate limits with the ``limits`` library: in memory, or in Redis shared by every instance.

Invariant (SECURITY.md case 43): there is no unlimited mode. When Redis cannot be
reached the limits either fall back to this instance's memory or refuse the request
(503), as ``rate_limit_fallback`` says; they never let the request through unchecked.
After a Redis failure the fallback is used for a short while before Redis is tried
again, so an outage does not add a connection timeout to every request.

The in-memory storage of ``limits`` (5.8) is not safe for concurrent threads: two hits
that both find its expiry timer stopped can start the same timer twice, and the second
raises ``RuntimeError`` (a 500 under load; fixed upstream in alisaifee/limits#352, not
released yet). Every call into it therefore holds one lock; the handlers run on many
threads.

That storage also starts a new ``threading.Timer`` thread for its expiry after every
quiet 10 ms in which a hit came (about 280 us of CPU each on the benchmark machine: up
to 100 a second under load, and one or two for every sign-in of a person alone), and
each expiry walks every key. :class:`HousekeptMemoryStorage` gives it one long-lived
thread instead, which runs the same expiry once a second. Expiry only frees memory: a
moving window's hit is decided by the timestamps of the hits in the window, whatever
older ones are still held, so the limits admit and refuse exactly as before.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
import weakref
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from sekisho.errors import ErrorCode, SekishoError
from sekisho.settings import Settings

log = logging.getLogger("sekisho.ratelimits")
RETRY_SHARED_AFTER_SECONDS = 5.0
#: How often the memory storage's expired hits are dropped.
EXPIRY_SECONDS = 1.0
#: The memory storage's own expiry, private to ``limits`` (requirements.lock pins 5.8.0; a
#: test fails should a release rename it).
LIMITS_EXPIRY = "_MemoryStorage__expire_events"


class HousekeptMemoryStorage(MemoryStorage):
    """``limits``' memory storage with its expiry on one thread of its own.

    The storage starts an expiry thread whenever its ``timer`` is not alive; here the
    ``timer`` is a :class:`_Housekeeper`, alive as long as the storage, so no hit starts
    a thread. The housekeeper runs the storage's own expiry (under ``lock``, which the
    caller also holds around every hit) every ``every`` seconds, and ends once the
    storage is gone. Should it ever stop, the storage starts its timers again as before.
    """

    def __init__(self, lock: threading.Lock, every: float = EXPIRY_SECONDS) -> None:
        super().__init__()
        self.timer = _Housekeeper(every, weakref.ref(self), lock)
        self.timer.start()

    def expire(self) -> None:
        """Drop the hits and counters whose windows have passed (``limits``' expiry)."""
        getattr(self, LIMITS_EXPIRY)()


class _Housekeeper(threading.Timer):
    """A timer that fires every ``interval`` seconds until its storage is gone (or it is
    cancelled, as any ``threading.Timer``)."""

    def __init__(
        self,
        every: float,
        storage: weakref.ref[HousekeptMemoryStorage],
        lock: threading.Lock,
    ) -> None:
        super().__init__(every, self._expire)
        self.name = "sekisho-ratelimit-expiry"
        self.daemon = True
        self._storage = storage
        self._lock = lock

    def run(self) -> None:
        while not self.finished.wait(self.interval):
            if not self._expire():
                return

    def _expire(self) -> bool:
        storage = self._storage()
        if storage is None:
            return False
        with self._lock:
            storage.expire()
        return True


@dataclass(frozen=True, slots=True)
class Limit:
    """One named limit, possibly several windows ('5/minute;20/hour')."""

    name: str
    items: tuple[RateLimitItem, ...]

    @classmethod
    def of(cls, name: str, text: str) -> Limit:
        return cls(name, tuple(parse_many(text)))


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self._fallback_mode = settings.rate_limit_fallback
        self._memory_lock = threading.Lock()
        self._memory = MovingWindowRateLimiter(HousekeptMemoryStorage(self._memory_lock))
        self._shared: MovingWindowRateLimiter | None = None
        self._shared_down_until = 0.0
        self.refusals: collections.Counter[str] = collections.Counter()  # by limit name
        if settings.redis_url:
            storage = storage_from_string(
                settings.redis_url, socket_connect_timeout=1, socket_timeout=1
            )
            if not isinstance(storage, Storage):
                raise ValueError("redis_url must name a synchronous limits storage")
            self._shared = MovingWindowRateLimiter(storage)
        self.sends_per_address = Limit.of("send-address", settings.limit_sends_per_address)
        self.sends_per_ip = Limit.of("send-ip", settings.limit_sends_per_ip)
        self.sends_global = Limit.of("send-global", settings.limit_sends_global)
        self.verify_per_ip = Limit.of("verify-ip", settings.limit_verify_per_ip)
        self.verify_global = Limit.of("verify-global", settings.limit_verify_global)
        self.ceremonies_per_ip = Limit.of("ceremony-ip", settings.limit_ceremonies_per_ip)
        self.recovery_per_address = Limit.of(
            "recovery-address", settings.limit_recovery_per_address
        )
        self.email_changes_per_account = Limit.of(
            "email-change-account", settings.limit_email_changes_per_account
        )
        self.token_per_ip = Limit.of("token-ip", settings.limit_token_per_ip)
        self.token_per_client = Limit.of("token-client", settings.limit_token_per_client)

    def hit_verification(self, ip: str) -> None:
        """Count one check of a secret (code, approval, passkey, password): per IP and overall."""
        self.hit(self.verify_per_ip, ip)
        self.hit(self.verify_global)

    def hit(self, limit: Limit, key: str = "all") -> None:
        """Count one event in every window; raise ``rate_limited`` (429 with
        Retry-After) when any window is full."""
        for item in limit.items:
            limiter = self._limiter()
            try:
                with self._guard(limiter):
                    allowed = limiter.hit(item, limit.name, key)
            except Exception as error:
                if limiter is self._memory:
                    raise
                limiter = self._on_shared_failure(error)
                with self._guard(limiter):
                    allowed = limiter.hit(item, limit.name, key)
            if not allowed:
                shown = key if limit.name.endswith("ip") else "-"
                log.warning("rate limit %s (%s) reached for %s", limit.name, item, shown)
                self.refusals[limit.name] += 1
                retry_after = self._retry_after(limiter, item, limit.name, key)
                raise SekishoError(ErrorCode.rate_limited, retry_after=retry_after)

    def _retry_after(
        self, limiter: MovingWindowRateLimiter, item: RateLimitItem, name: str, key: str
    ) -> int:
        """Seconds until the window admits one more. Should Redis fail between the hit
        that refused and this question, the refusal stands with the whole window as its
        Retry-After (never a 500), and the fallback takes over as after any failure."""
        try:
            with self._guard(limiter):
                reset_at, _remaining = limiter.get_window_stats(item, name, key)
        except Exception as error:
            if limiter is self._memory:
                raise
            self._shared_failed(error)
            return item.get_expiry()
        return max(1, math.ceil(reset_at - time.time()))

    def _guard(self, limiter: MovingWindowRateLimiter) -> AbstractContextManager[object]:
        return self._memory_lock if limiter is self._memory else nullcontext()

    def _limiter(self) -> MovingWindowRateLimiter:
        if self._shared is None:
            return self._memory
        if time.monotonic() < self._shared_down_until:
            return self._fallback()
        return self._shared

    def _on_shared_failure(self, error: Exception) -> MovingWindowRateLimiter:
        self._shared_failed(error)
        return self._fallback()

    def _shared_failed(self, error: Exception) -> None:
        self._shared_down_until = time.monotonic() + RETRY_SHARED_AFTER_SECONDS
        log.error("rate limit storage unreachable (%s)", type(error).__name__)

    def _fallback(self) -> MovingWindowRateLimiter:
        if self._fallback_mode == "fail_closed":
            raise SekishoError(ErrorCode.service_unavailable)
        return self._memory
