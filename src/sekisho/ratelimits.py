"""Rate limits with the ``limits`` library: in memory, or in Redis shared by every instance.

Invariant (SECURITY.md case 43): there is no unlimited mode. When Redis cannot be
reached the limits either fall back to this instance's memory or refuse the request
(503), as ``rate_limit_fallback`` says; they never let the request through unchecked.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from sekisho.errors import ErrorCode, SekishoError
from sekisho.settings import Settings

log = logging.getLogger("sekisho.ratelimits")


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    item: RateLimitItem


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self._fallback_mode = settings.rate_limit_fallback
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        if settings.redis_url:
            storage = storage_from_string(
                settings.redis_url,
                socket_connect_timeout=1,
                socket_timeout=1,
            )
            if not isinstance(storage, Storage):
                raise ValueError("redis_url must name a synchronous limits storage")
            self._shared = MovingWindowRateLimiter(storage)
        self.sends_per_address = Limit("send-address", parse(settings.limit_sends_per_address))
        self.sends_per_ip = Limit("send-ip", parse(settings.limit_sends_per_ip))
        self.sends_global = Limit("send-global", parse(settings.limit_sends_global))
        self.verify_per_ip = Limit("verify-ip", parse(settings.limit_verify_per_ip))
        self.verify_global = Limit("verify-global", parse(settings.limit_verify_global))

    def hit(self, limit: Limit, key: str = "all") -> None:
        """Count one event; raise ``rate_limited`` (429 with Retry-After) when over."""
        limiter = self._limiter()
        try:
            allowed = limiter.hit(limit.item, limit.name, key)
        except Exception as error:
            if limiter is self._memory:
                raise
            allowed = self._on_shared_failure(error).hit(limit.item, limit.name, key)
            limiter = self._memory
        if allowed:
            return
        log.warning(
            "rate limit %s reached for %s", limit.name, key if limit.name.endswith("ip") else "-"
        )
        reset_at, _remaining = limiter.get_window_stats(limit.item, limit.name, key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise SekishoError(ErrorCode.rate_limited, retry_after=retry_after)

    def _limiter(self) -> MovingWindowRateLimiter:
        return self._shared if self._shared is not None else self._memory

    def _on_shared_failure(self, error: Exception) -> MovingWindowRateLimiter:
        if self._fallback_mode == "fail_closed":
            log.error("rate limit storage unreachable (%s); failing closed", type(error).__name__)
            raise SekishoError(ErrorCode.service_unavailable) from error
        log.error(
            "rate limit storage unreachable (%s); using this instance's memory",
            type(error).__name__,
        )
        return self._memory

    def reset(self) -> None:
        """Forget every count (operators' `sekisho limits reset`, and tests)."""
        self._memory.storage.reset()
        if self._shared is not None:
            self._shared.storage.reset()
