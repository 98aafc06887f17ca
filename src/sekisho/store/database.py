"""Engine set-up and the transaction boundary.

SQLite runs in WAL mode with ``BEGIN IMMEDIATE`` transactions, so that concurrent
writers queue on the busy timeout instead of failing on lock upgrades; PostgreSQL runs
at READ COMMITTED, where each single-statement compare-and-set in the repositories
re-checks its WHERE clause after waiting for a concurrent writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url

from sekisho.errors import SekishoError
from sekisho.store.repositories import SqlRepositories


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Implements :class:`sekisho.core.ports.Transactions`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._enqueue_listeners: list[Callable[[], object]] = []

    def on_enqueue(self, listener: Callable[[], object]) -> Callable[[], None]:
        """Call ``listener`` after each commit that queued mail (from the committing
        thread; it must be thread-safe and quick). Returns the function that removes it."""
        self._enqueue_listeners.append(listener)
        return lambda: self._enqueue_listeners.remove(listener)

    @contextmanager
    def transaction(self) -> Iterator[SqlRepositories]:
        with self.engine.connect() as connection:
            transaction = connection.begin()
            repos = SqlRepositories(connection)
            try:
                yield repos
            except SekishoError as error:
                if error.persist:
                    transaction.commit()
                    self._committed(repos)
                else:
                    transaction.rollback()
                raise
            except BaseException:
                transaction.rollback()
                raise
            else:
                transaction.commit()
                self._committed(repos)

    def _committed(self, repos: SqlRepositories) -> None:
        if repos.outbox.enqueued:
            for listener in tuple(self._enqueue_listeners):
                listener()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
