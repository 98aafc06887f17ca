"""A live Sekisho server on a real socket, with a fresh database per test."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import uvicorn
from sqlalchemy import text

from sekisho.app import create_app
from sekisho.core.keys import Keyring
from sekisho.settings import Settings
from sekisho.store.database import Database, make_engine
from tests.support.watchdog import StallWatchdog

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"
"""The secret key of every test server, and of the CLI runs against their databases."""


@contextlib.contextmanager
def fresh_database(backend: str, tmp_path: Any) -> Iterator[str]:
    """A database of its own: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/sekisho-{uuid.uuid4().hex[:8]}.db"
        return
    name = f"sekisho_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class LiveServer:
    """uvicorn serving ``create_app(settings)`` in a thread, on 127.0.0.1.

    ``host_name`` is the name clients use to reach it: ``localhost`` for browser tests
    of WebAuthn, whose RP ID must be a domain (an IP address is refused). ``clock``
    replaces the server's "now" (tests/support/clock.py) for tests of deadlines.
    """

    def __init__(
        self,
        settings: Settings,
        port: int,
        host_name: str = "127.0.0.1",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.port = port
        self.url = f"http://{host_name}:{port}"
        self.app = create_app(settings) if clock is None else create_app(settings, clock=clock)
        self._watchdog = StallWatchdog(self.app, label=f"port {port}")
        config = uvicorn.Config(
            self._watchdog,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits when the app refuses to start
            self._server.run()

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._watchdog.stop()

    @property
    def database(self) -> Database:
        return Database(
            make_engine(self.settings.database_url),
            Keyring(self.settings.secret_key.get_secret_value()),
        )

    def add_user(self, email: str) -> str:
        database = self.database
        try:
            with database.transaction() as repos:
                return repos.users.create(email, now=datetime.now(UTC), verified=True).id
        finally:
            database.dispose()

    def audited(self, event: str) -> list[dict[str, Any]]:
        """The details of every ``event`` audited so far, oldest first."""
        database = self.database
        try:
            with database.engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT detail FROM audit_events WHERE event = :e ORDER BY id"),
                    {"e": event},
                ).scalars()
                return [json.loads(row) for row in rows]
        finally:
            database.dispose()

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30, **kwargs)


def settings_for(
    database_url: str, smtp_port: int, port: int, host_name: str = "127.0.0.1", **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "mode": "development",
        "public_origin": f"http://{host_name}:{port}",
        "secret_key": SECRET_KEY,
        "database_url": database_url,
        "mail_backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_security": "none",
        "mail_poll_seconds": 0.05,
        "mail_retry_base_seconds": 0.2,
        "mail_retry_max_seconds": 1.0,
    }
    values.update(overrides)
    return Settings(**values)
