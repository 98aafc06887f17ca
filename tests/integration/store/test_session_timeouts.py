"""Session limits by AAL and tier (NIST SP 800-63B-4 §2.1.3, §2.2.3, §2.3.3; SECURITY.md
case 29), stored in a real database and read back with a clock the test sets: the
``now`` each check is given, never a sleep."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sekisho.core.keys import Keyring
from sekisho.core.records import Session
from sekisho.core.sessions import SessionManager, SessionTimeouts
from sekisho.settings import Settings
from sekisho.store.database import Database, make_engine
from sekisho.store.migrate import upgrade
from tests.support.server import SECRET_KEY, fresh_database

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
DEFAULTS = Settings(secret_key=SECRET_KEY)
TIMEOUTS = SessionTimeouts(
    idle_aal1=DEFAULTS.session_idle_timeout,
    absolute_aal1=DEFAULTS.session_absolute_timeout,
    idle_aal2=DEFAULTS.session_aal2_idle_timeout,
    absolute_aal2=DEFAULTS.session_aal2_absolute_timeout,
    idle_aal3=DEFAULTS.session_aal3_idle_timeout,
    absolute_aal3=DEFAULTS.session_aal3_absolute_timeout,
)


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        db = Database(engine, Keyring(SECRET_KEY))
        yield db
        db.dispose()


def _issue(
    database: Database, manager: SessionManager, aal: int, idle_limit: timedelta | None = None
) -> str:
    token = f"token-aal{aal}-{idle_limit}"
    with database.transaction() as repos:
        user = repos.users.by_email("t@example.com") or repos.users.create(
            "t@example.com", now=START, verified=True
        )
        repos.sessions.create(
            Session(
                id=f"s{aal}{int(idle_limit.total_seconds()) if idle_limit else ''}",
                user_id=user.id,
                created_at=START,
                last_seen_at=START,
                auth_time=START,
                expires_at=START + manager.timeouts.absolute(aal),
                ip="192.0.2.1",
                user_agent="test",
                amr=("hwk", "pin", "mfa") if aal > 1 else ("email",),
                aal=aal,
                idle_limit=idle_limit,
            ),
            token_digest=manager.token_digest(token),
        )
    return token


def _alive(database: Database, manager: SessionManager, token: str, at: datetime) -> bool:
    with database.transaction() as repos:
        return manager.current(repos, token, now=at) is not None


def test_defaults_follow_nist() -> None:
    assert TIMEOUTS.absolute(1) == timedelta(days=30)
    assert TIMEOUTS.idle(1) == timedelta(days=30), "no inactivity limit of its own at AAL1"
    assert TIMEOUTS.absolute(2) == timedelta(hours=24)
    assert TIMEOUTS.idle(2) == timedelta(hours=1)
    assert TIMEOUTS.absolute(3) == timedelta(hours=12)
    assert TIMEOUTS.idle(3) == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("session_aal3_idle_timeout", "PT16M"), ("session_aal3_absolute_timeout", "PT13H")],
)
def test_aal3_limits_beyond_nist_are_refused(setting: str, value: str) -> None:
    with pytest.raises(ValueError, match=setting):
        Settings.model_validate({"secret_key": SECRET_KEY, setting: value})


@pytest.mark.parametrize(
    ("aal", "idle"),
    [(1, DEFAULTS.session_idle_timeout), (2, timedelta(hours=1)), (3, timedelta(minutes=15))],
)
def test_idle_limit_by_aal(database: Database, aal: int, idle: timedelta) -> None:
    manager = SessionManager(keys=Keyring(SECRET_KEY), timeouts=TIMEOUTS)
    token = _issue(database, manager, aal)
    assert _alive(database, manager, token, START + idle - timedelta(seconds=1))
    assert not _alive(database, manager, token, START + idle - timedelta(seconds=1) + idle), (
        "idle past the limit after the last activity"
    )


@pytest.mark.parametrize("aal", [1, 2, 3])
def test_absolute_limit_by_aal_despite_activity(database: Database, aal: int) -> None:
    manager = SessionManager(keys=Keyring(SECRET_KEY), timeouts=TIMEOUTS)
    token = _issue(database, manager, aal)
    step = TIMEOUTS.idle(aal) / 2
    at = START
    while at + step < START + TIMEOUTS.absolute(aal):
        at += step
        assert _alive(database, manager, token, at)
    assert not _alive(database, manager, token, START + TIMEOUTS.absolute(aal))


def test_a_tier_idle_limit_is_kept_by_the_session(database: Database) -> None:
    manager = SessionManager(keys=Keyring(SECRET_KEY), timeouts=TIMEOUTS)
    token = _issue(database, manager, 2, idle_limit=timedelta(minutes=20))
    assert _alive(database, manager, token, START + timedelta(minutes=19))
    assert not _alive(database, manager, token, START + timedelta(minutes=19 + 20))
