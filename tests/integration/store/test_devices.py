"""Known browsers on SQLite and PostgreSQL: a browser seen before costs one read, and its
last sighting moves at most once a day; a new one is recorded once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from sekisho.core.keys import Keyring
from sekisho.store.database import Database, make_engine
from sekisho.store.migrate import upgrade
from tests.support.server import fresh_database

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        db = Database(engine, Keyring("test-devices-secret"))
        yield db
        db.dispose()


def _last_seen(database: Database, digest: str) -> datetime:
    with database.engine.connect() as connection:
        value = connection.execute(
            text("SELECT last_seen_at FROM known_devices WHERE digest = :d"), {"d": digest}
        ).scalar_one()
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def test_a_known_browser_is_read_and_its_sighting_kept_to_the_day(database: Database) -> None:
    with database.transaction() as repos:
        user = repos.users.create("a@example.com", now=NOW, verified=True)
        other = repos.users.create("b@example.com", now=NOW, verified=True)
    with database.transaction() as repos:
        assert not repos.devices.known(user.id, "d1", now=NOW)
        assert not repos.devices.any_for(user.id)
        assert repos.devices.add(user.id, "d1", now=NOW)
        assert not repos.devices.add(user.id, "d1", now=NOW)  # recorded once
        assert repos.devices.any_for(user.id)
        assert not repos.devices.known(other.id, "d1", now=NOW)
    with database.transaction() as repos:
        assert repos.devices.known(user.id, "d1", now=NOW + timedelta(hours=23))
    assert _last_seen(database, "d1").replace(tzinfo=UTC) == NOW
    with database.transaction() as repos:
        assert repos.devices.known(user.id, "d1", now=NOW + timedelta(hours=25))
    assert _last_seen(database, "d1").replace(tzinfo=UTC) == NOW + timedelta(hours=25)
