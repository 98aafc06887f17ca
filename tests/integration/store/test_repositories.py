"""The one-time secret store's atomic statements, on SQLite and PostgreSQL, under real
concurrency (threads with their own connections)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sekisho.core.keys import Keyring
from sekisho.core.records import FlowState, Recovery
from sekisho.store.database import Database, make_engine
from sekisho.store.migrate import upgrade
from tests.support.records import email_flow
from tests.support.server import fresh_database

NOW = datetime.now(UTC)


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        db = Database(engine, Keyring("test-repositories-secret"))
        yield db
        db.dispose()


def _flow(database: Database, flow_id: str = "flow-1", email: str = "a@example.com") -> None:
    with database.transaction() as repos:
        repos.flows.create(email_flow(flow_id, email, NOW))
        repos.secrets.add(
            flow_id=flow_id,
            purpose="signin",
            kind="link",
            digest=f"link-{flow_id}",
            max_attempts=1,
            expires_at=NOW + timedelta(minutes=10),
        )
        repos.secrets.add(
            flow_id=flow_id,
            purpose="signin",
            kind="code",
            digest=f"code-{flow_id}",
            max_attempts=5,
            expires_at=NOW + timedelta(minutes=10),
        )


def test_link_is_consumed_once_under_concurrency(database: Database) -> None:
    _flow(database)

    def consume(_: int) -> str | None:
        with database.transaction() as repos:
            return repos.secrets.consume_live(
                purpose="signin", kind="link", digest="link-flow-1", now=NOW
            )

    with ThreadPoolExecutor(max_workers=16) as pool:
        winners = [result for result in pool.map(consume, range(32)) if result]
    assert winners == ["flow-1"]


def test_code_attempts_never_exceed_the_cap_under_concurrency(database: Database) -> None:
    _flow(database)

    def attempt(_: int) -> int | None:
        with database.transaction() as repos:
            taken = repos.secrets.take_code_attempt(flow_id="flow-1", purpose="signin", now=NOW)
            return taken.attempts if taken else None

    with ThreadPoolExecutor(max_workers=16) as pool:
        counted = sorted(result for result in pool.map(attempt, range(40)) if result is not None)
    assert counted == [1, 2, 3, 4, 5]


def test_purpose_and_expiry_bind_the_secret(database: Database) -> None:
    _flow(database)
    with database.transaction() as repos:
        assert (
            repos.secrets.find_live(purpose="recovery", kind="link", digest="link-flow-1", now=NOW)
            is None
        )
        assert (
            repos.secrets.find_live(
                purpose="signin", kind="link", digest="link-flow-1", now=NOW + timedelta(minutes=11)
            )
            is None
        )
        assert (
            repos.secrets.find_live(purpose="signin", kind="link", digest="link-flow-1", now=NOW)
            == "flow-1"
        )


def test_supersession_spends_the_previous_flow(database: Database) -> None:
    _flow(database, "flow-1")
    with database.transaction() as repos:
        superseded = repos.flows.supersede_pending("a@example.com", "email_signin", now=NOW)
        for flow_id in superseded:
            repos.secrets.spend_flow(flow_id, reason="superseded", now=NOW)
    assert superseded == ["flow-1"]
    with database.transaction() as repos:
        assert (
            repos.secrets.find_live(purpose="signin", kind="link", digest="link-flow-1", now=NOW)
            is None
        )
        assert repos.secrets.take_code_attempt(flow_id="flow-1", purpose="signin", now=NOW) is None
        assert not repos.flows.transition(
            "flow-1", from_state=FlowState.PENDING, to_state=FlowState.COMPLETED, now=NOW
        )


def test_failure_counter_increments_atomically(database: Database) -> None:
    def fail(_: int) -> int:
        with database.transaction() as repos:
            return repos.failures.record_failure("a@example.com", "email_code", now=NOW)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = sorted(pool.map(fail, range(30)))
    assert results == list(range(1, 31))


def test_the_user_is_read_with_the_recovery_hold_running_now(database: Database) -> None:
    """SECURITY.md case 54: the hold a confirmation step reads with the person is the one
    ``recoveries.hold_until`` reads: the latest end still ahead, none once it passed."""
    with database.transaction() as repos:
        held = repos.users.create("held@example.com", now=NOW, verified=True)
        free = repos.users.create("free@example.com", now=NOW, verified=True)
        for number, (user, hours) in enumerate(((held, 23), (held, 5), (held, -1), (free, -2))):
            repos.recoveries.start(
                Recovery(
                    session_id=f"recovery-{number}",
                    user_id=user.id,
                    started_at=NOW - timedelta(hours=30),
                )
            )
            repos.recoveries.complete(
                f"recovery-{number}",
                passkey_id="passkey",
                hold_until=NOW + timedelta(hours=hours),
                now=NOW - timedelta(hours=29),
            )
    with database.transaction() as repos:
        for user, later in ((held, NOW), (held, NOW + timedelta(hours=6)), (free, NOW)):
            found, hold = repos.users.by_id_and_hold(user.id, now=later)
            assert found == user
            assert hold == repos.recoveries.hold_until(user.id, now=later)
        assert repos.users.by_id_and_hold(held.id, now=NOW)[1] == NOW + timedelta(hours=23)
        assert repos.users.by_id_and_hold(held.id, now=NOW + timedelta(hours=24))[1] is None
        assert repos.users.by_id_and_hold(free.id, now=NOW)[1] is None
        assert repos.users.by_id_and_hold("nobody", now=NOW) == (None, None)
