"""The PostgreSQL pool without ``pool_pre_ping``: a pooled connection whose session the
server ended is found at checkout by one look at its socket and replaced, so the next
transaction runs on a new connection instead of failing (docs/architecture.md,
"PostgreSQL: one sealing statement, and no ping per checkout")."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
from sqlalchemy import text

from sekisho.store.database import make_engine
from tests.support.server import POSTGRES_ADMIN, fresh_database


def _gone(pid: int) -> None:
    """Until the ended backend has left (its last message is then on the socket)."""
    deadline = time.monotonic() + 10
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} did not end"
            time.sleep(0.02)


def test_a_pooled_connection_the_server_ended_is_replaced_at_checkout(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        try:
            assert not engine.pool._pre_ping
            with engine.connect() as connection:
                ended = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (ended,))
            _gone(ended)
            with engine.begin() as connection:
                pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            assert pid != ended
        finally:
            engine.dispose()
