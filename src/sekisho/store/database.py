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

import asyncio
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError

from sekisho.core.audit_chain import AuditSeal
from sekisho.core.keys import Keyring
from sekisho.errors import SekishoError
from sekisho.store.audit_chain import Anchors, KnownHeads, claim_start
from sekisho.store.prepared import run_on_driver
from sekisho.store.repositories import SqlRepositories

READ_ONLY = "sekisho_read_only"
#: How long a SQLite connection waits for another process's lock before giving up.
SQLITE_BUSY_SECONDS = 30
#: What a commit may have queued: mail (the outbox) or back-channel logouts.
Queued = Literal["mail", "logout"]
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
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False}
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_size=10, max_overflow=20)
    if engine.dialect.driver == "psycopg":
        event.listen(engine, "checkout", _check_quiet)
    return engine


def _check_quiet(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled PostgreSQL connection is handed out only if it is still open and the
    server has sent nothing on it since it went idle: a server that shut down or ended
    the session (a restart, ``pg_terminate_backend``) sends its last message and closes,
    which makes the socket readable. One ``poll`` of the socket, no round trip (what
    ``pool_pre_ping`` costs on every checkout); the pool replaces a connection refused
    here with a new one. A connection whose server went away without a word is found at
    its first statement, as it would be after a ping (the request fails closed, 503, and
    the pool is renewed)."""
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the connection is closed")
    poller = select.poll()
    poller.register(dbapi_connection.pgconn.socket, select.POLLIN)
    if poller.poll(0):
        raise DisconnectionError("the server spoke on an idle connection: closing it")


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Put the file in WAL mode (recorded in the file, so a no-op after its first time).

    While one connection switches a new file to WAL, another one switching it too gets
    SQLITE_BUSY at once: SQLite does not call the busy handler for a journal-mode change.
    Instances starting together on a new file (``serve --workers``, a CLI command beside
    a server) meet exactly that, so the switch is tried again until it holds, within the
    same time the busy timeout allows any other lock.
    """
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        _use_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # On the driver's connection (store/prepared.py): the same statements on the same
    # connection, without SQLAlchemy's execution context for each.
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            run_on_driver(connection, "BEGIN").close()
            run_on_driver(connection, "PRAGMA query_only=ON").close()
        else:
            run_on_driver(connection, "BEGIN IMMEDIATE").close()


class Database:
    """Implements :class:`sekisho.core.ports.Transactions`. The keys seal the audit
    events each transaction writes onto the audit chain, just before it commits."""

    def __init__(self, engine: Engine, keys: Keyring) -> None:
        self.engine = engine
        self.seal = AuditSeal(keys)
        self.anchors = Anchors()
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._start_claim: Any = None
        self.known_heads = KnownHeads(None if self.is_sqlite else self._claim_start)
        self.audit_listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self._writers = _writer_lock(engine)
        self._enqueue_listeners: dict[Queued, list[Callable[[], object]]] = {
            "mail": [],
            "logout": [],
        }

    def on_enqueue(self, queued: Queued, listener: Callable[[], object]) -> Callable[[], None]:
        """Call ``listener`` after each commit that queued ``queued`` (mail or a
        back-channel logout), from the committing thread; it must be thread-safe and
        quick. Returns the function that removes it."""
        listeners = self._enqueue_listeners[queued]
        listeners.append(listener)
        return lambda: listeners.remove(listener)

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
            known = self.known_heads.lease()
            try:
                with connection.begin():
                    repos = SqlRepositories(connection, self.seal, self.anchors, known)
                    yield repos
                    repos.audit.flush()
                known.settle()
            finally:
                known.release()
                # On the driver's connection (autocommit): no transaction is begun for it.
                driver: Any = connection.connection.driver_connection
                driver.execute("PRAGMA query_only=OFF")

    @contextmanager
    def transaction(self) -> Iterator[SqlRepositories]:
        with self._writers, self.engine.connect() as connection:
            transaction = connection.begin()
            known = self.known_heads.lease()
            repos = SqlRepositories(connection, self.seal, self.anchors, known)
            try:
                yield repos
            except SekishoError as error:
                if error.persist:
                    written = repos.audit.flush()
                    transaction.commit()
                    known.settle()
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
                known.settle()
                self._committed(repos, written)
            finally:
                known.release()

    def _committed(self, repos: SqlRepositories, events: list[dict[str, Any]]) -> None:
        """Tell the listeners about what a commit made durable: the audit events
        (metrics) and queued mail (the worker's wake-up)."""
        if events:
            for audit_listener in self.audit_listeners:
                audit_listener(events)
        if repos.outbox.enqueued:
            for enqueue_listener in tuple(self._enqueue_listeners["mail"]):
                enqueue_listener()
        if repos.logouts.enqueued:
            for enqueue_listener in tuple(self._enqueue_listeners["logout"]):
                enqueue_listener()

    def _claim_start(self) -> int:
        """This process's starting audit chain, held while the database is open."""
        chain, self._start_claim = claim_start(self.engine)
        return chain

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        if self._start_claim is not None:
            self._start_claim.close()
            self._start_claim = None
        self.engine.dispose()


class Wakeup:
    """Wakes a queue's worker on its event loop after a commit in this process queued
    work for it, from the committing thread.

    At most one wake-up is on its way at a time: a commit that finds one already sent
    and not yet taken adds nothing. Each ``call_soon_threadsafe`` writes to the loop's
    wake-up pipe and makes the loop run once more; under load most commits happen while
    the worker is busy with the previous batch, and were each paying that. No wake-up is
    lost: :meth:`take` clears the flag and the event *before* the worker reads its queue
    again, so a commit that saw the flag still set had committed before that read, and a
    later one sends a new wake-up.
    """

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._sent = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def listen(self, database: Database, queued: Queued) -> Callable[[], None]:
        """Be woken by ``database``'s commits that queue ``queued``, on the running
        loop. Returns the function that stops listening."""
        self._loop = asyncio.get_running_loop()
        return database.on_enqueue(queued, self.send)

    def send(self) -> None:
        """From any thread: wake the worker, unless a wake-up is already on its way."""
        if self._sent or self._loop is None:
            return
        self._sent = True
        self._loop.call_soon_threadsafe(self.event.set)

    def take(self) -> None:
        """On the loop, before the queue is read again: the next commit wakes anew."""
        self._sent = False
        self.event.clear()

    async def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for a wake-up, and take it; whether one came."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout=timeout)
        except TimeoutError:
            return False
        finally:
            self.take()
        return True
