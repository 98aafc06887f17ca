from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sekisho.core.policy import FailurePolicy

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = FailurePolicy(
    free_attempts=5, cap=100, max_delay=timedelta(minutes=15), lockout=timedelta(hours=24)
)


def test_first_failures_are_free() -> None:
    assert all(POLICY.wait(n, NOW, NOW) == 0 for n in range(5))


def test_delay_doubles_then_caps() -> None:
    assert POLICY.wait(5, NOW, NOW) == 1
    assert POLICY.wait(6, NOW, NOW) == 2
    assert POLICY.wait(9, NOW, NOW) == 16
    assert POLICY.wait(40, NOW, NOW) == 15 * 60


def test_delay_runs_out() -> None:
    assert POLICY.wait(9, NOW, NOW + timedelta(seconds=16)) == 0


def test_cap_holds_for_the_lockout_and_is_not_permanent() -> None:
    assert POLICY.wait(100, NOW, NOW + timedelta(hours=23)) == 3600
    assert POLICY.wait(100, NOW, NOW + timedelta(hours=24)) == 0
