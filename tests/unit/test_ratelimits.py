from __future__ import annotations

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
