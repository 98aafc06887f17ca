"""Engine set-up and the transaction boundary.

SQLite is one writer. It runs in WAL mode; a write transaction takes a process-wide
lock (one per database file) and then ``BEGIN IMMEDIATE``, so the threads of one
process queue on a cheap lock in arrival order instead of sleeping in SQLite's busy
back-off, and the busy timeout is left for writers in other processes (a separate mail
worker, the CLI). Read-only work (:meth:`Database.reading`) opens a deferred ``BEGIN``
and takes neither: WAL readers never wait for the writer. PostgreSQL runs at READ
COMMITTED, where each single-statement compare-and-set in the repositories re-checks
its WHERE clause after waiting for a concurrent writer; it takes no process lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url

from sekisho.core.audit_chain import AuditSeal
from sekisho.core.keys import Keyring
from sekisho.errors import SekishoError
from sekisho.store.audit_chain import Anchors, KnownHead
from sekisho.store.repositories import SqlRepositories

READ_ONLY = "sekisho_read_only"
_writer_locks: dict[str, threading.Lock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(engine: Engine) -> AbstractContextManager[object]:
    """The process-wide writer lock of a SQLite file; none for other databases."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _writer_locks_guard:
        return _writer_locks.setdefault(str(engine.url), threading.Lock())


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
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
            connection.exec_driver_sql("PRAGMA query_only=ON")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Implements :class:`sekisho.core.ports.Transactions`. The keys seal the audit
    events each transaction writes onto the audit chain, just before it commits."""

    def __init__(self, engine: Engine, keys: Keyring) -> None:
        self.engine = engine
        self.seal = AuditSeal(keys)
        self.anchors = Anchors()
        self.known_head = KnownHead()
        self.audit_listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self._writers = _writer_lock(engine)
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._enqueue_listeners: list[Callable[[], object]] = []

    def on_enqueue(self, listener: Callable[[], object]) -> Callable[[], None]:
        """Call ``listener`` after each commit that queued mail or a back-channel logout
        (from the committing thread; it must be thread-safe and quick). Returns the
        function that removes it."""
        self._enqueue_listeners.append(listener)
        return lambda: self._enqueue_listeners.remove(listener)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction on a bare connection (``engine.begin()`` under the writer
        lock), for the stores that do not go through the repositories."""
        with self._writers, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def reading(self) -> Iterator[SqlRepositories]:
        """A read-only transaction. On SQLite a deferred ``BEGIN`` without the writer
        lock, with ``query_only`` on, so that a write by mistake fails at once instead of
        upgrading the lock (an audit event appended here fails the same way when it is
        sealed); on PostgreSQL the same as :meth:`transaction`."""
        if not self.is_sqlite:
            with self.transaction() as repos:
                yield repos
            return
        with self.engine.connect() as connection:
            connection.execution_options(**{READ_ONLY: True})
            try:
                with connection.begin():
                    repos = SqlRepositories(connection, self.seal, self.anchors, self.known_head)
                    yield repos
                    repos.audit.flush()
            finally:
                # On the driver's connection (autocommit): no transaction is begun for it.
                driver: Any = connection.connection.driver_connection
                driver.execute("PRAGMA query_only=OFF")

    @contextmanager
    def transaction(self) -> Iterator[SqlRepositories]:
        with self._writers, self.engine.connect() as connection:
            transaction = connection.begin()
            repos = SqlRepositories(connection, self.seal, self.anchors, self.known_head)
            try:
                yield repos
            except SekishoError as error:
                if error.persist:
                    written = repos.audit.flush()
                    transaction.commit()
                    self._committed(repos, written)
                else:
                    transaction.rollback()
                raise
            except BaseException:
                transaction.rollback()
                raise
            else:
                written = repos.audit.flush()
                transaction.commit()
                self._committed(repos, written)

    def _committed(self, repos: SqlRepositories, events: list[dict[str, Any]]) -> None:
        """Tell the listeners about what a commit made durable: the audit events
        (metrics) and queued mail (the worker's wake-up)."""
        if events:
            for audit_listener in self.audit_listeners:
                audit_listener(events)
        if repos.outbox.enqueued or repos.logouts.enqueued:
            for enqueue_listener in tuple(self._enqueue_listeners):
                enqueue_listener()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
