"""The transaction boundary on SQLite: writers queue on the process lock, readers on nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from sekisho.core.keys import Keyring
from sekisho.store.database import Database, make_engine
from sekisho.store.migrate import upgrade
from tests.support.server import SECRET_KEY

NOW = datetime.now(UTC)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """SQLite whose busy timeout is zero: a writer that meets the write lock fails at once."""
    engine = make_engine(f"sqlite:///{tmp_path}/sekisho.db")
    upgrade(engine)
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    db = Database(engine, Keyring(SECRET_KEY))
    yield db
    db.dispose()


def test_writers_of_one_process_queue_instead_of_meeting_sqlites_lock(
    database: Database,
) -> None:
    def write(index: int) -> None:
        for step in range(25):
            with database.transaction() as repos:
                repos.users.create(f"user{index}-{step}@example.com", now=NOW, verified=True)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(8)))
    with database.reading() as repos:
        assert repos.users.by_email("user7-24@example.com") is not None


def test_a_reader_does_not_wait_for_a_writer(database: Database, tmp_path: Path) -> None:
    with database.transaction() as repos:
        repos.users.create("reader@example.com", now=NOW, verified=True)
    other = sqlite3.connect(tmp_path / "sekisho.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with database.reading() as repos:
            assert repos.users.by_email("reader@example.com") is not None
        with pytest.raises(OperationalError, match="locked"), database.transaction():
            pass
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_read_only_transaction_refuses_writes_and_leaves_the_connection_writable(
    database: Database,
) -> None:
    with pytest.raises(OperationalError, match="readonly"), database.reading() as repos:
        repos.users.create("nobody@example.com", now=NOW, verified=True)
    for index in range(3):  # every pooled connection is writable again
        with database.transaction() as repos:
            repos.users.create(f"somebody{index}@example.com", now=NOW, verified=True)
    with database.reading() as repos:
        assert repos.users.by_email("nobody@example.com") is None


def test_processes_opening_a_new_file_together_all_get_wal(tmp_path: Path) -> None:
    """SQLite answers "database is locked" at once, without the busy timeout, to a
    journal-mode change that meets another one: engines opening a new file together
    (``serve --workers``) must all come up, in WAL mode."""
    for attempt in range(20):
        url = f"sqlite:///{tmp_path}/new-{attempt}.db"
        engines = [make_engine(url) for _ in range(3)]

        def journal_mode(engine: Engine) -> str:
            with engine.connect() as connection:
                mode: str = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
                return mode

        with ThreadPoolExecutor(max_workers=3) as pool:
            modes = list(pool.map(journal_mode, engines))
        for engine in engines:
            engine.dispose()
        assert modes == ["wal"] * 3
