from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sekisho.core.policy import recently_authenticated
from sekisho.core.records import Session

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _session(aal: int, minutes_ago: int) -> Session:
    at = NOW - timedelta(minutes=minutes_ago)
    return Session(
        id="s",
        user_id="u",
        created_at=at,
        last_seen_at=at,
        auth_time=at,
        expires_at=NOW + timedelta(days=1),
        ip="192.0.2.1",
        user_agent="",
        amr=("email",),
        aal=aal,
    )


def test_recent_authentication_needs_the_level_and_the_time() -> None:
    window = timedelta(minutes=10)
    assert recently_authenticated(_session(1, 5), required_aal=1, window=window, now=NOW)
    assert not recently_authenticated(_session(1, 11), required_aal=1, window=window, now=NOW)
    assert not recently_authenticated(_session(1, 1), required_aal=2, window=window, now=NOW)
    assert recently_authenticated(_session(2, 1), required_aal=2, window=window, now=NOW)
