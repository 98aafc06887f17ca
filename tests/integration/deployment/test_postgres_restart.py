"""PostgreSQL restarted during a burst of sign-ins (SECURITY.md case 43; docs/deployment.md,
"When a dependency is down").

While the database is down every request that needs it fails closed with 503
``service_unavailable`` (no 500, no stack trace, no cookie); once it is back the
connection pool recovers by itself (stale connections are replaced), nothing is held
checked out, the mail queued before the restart is delivered, and the audit chain is
intact. The server is a cluster of the test's own (tests/support/postgres.py).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.cli import run_sekisho
from tests.support.ports import free_port
from tests.support.postgres import PostgresCluster
from tests.support.server import LiveServer, settings_for
from tests.support.smtp import SmtpCapture, link_and_code

pytestmark = pytest.mark.deployment

Answer = tuple[str, int, str]  # (what, status, error code)


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    created = PostgresCluster().create()
    yield created
    created.remove()


class SignInBurst:
    """Threads that each sign in again and again by email code (request, mail, code,
    then the session), keeping every answer. Every sign-in is for a new address (self
    sign-up is on), so each email is told apart from a late one for an earlier try."""

    def __init__(self, server: LiveServer, smtp: SmtpCapture, threads: int = 4) -> None:
        self.answers: list[Answer] = []
        self._server = server
        self._smtp = smtp
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def __enter__(self) -> SignInBurst:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _keep(self, what: str, status: int, body: dict[str, object]) -> None:
        with self._lock:
            self.answers.append((what, status, str(body.get("error", ""))))

    def _run(self) -> None:
        while not self._stop.is_set():
            address = f"burst{next(self._numbers)}@example.com"
            with self._server.client() as client:
                started = client.post("/api/v1/signin/email", json={"email": address})
                self._keep("request", started.status_code, started.json())
                if started.status_code != 202:
                    continue
                try:
                    message = self._smtp.wait_for(address, timeout=20)
                except AssertionError:
                    continue  # not delivered yet: this sign-in is given up
                _link, code = link_and_code(message)
                flow = started.json()["flow_id"]
                done = client.post(f"/api/v1/signin/email/flows/{flow}/code", json={"code": code})
                self._keep("code", done.status_code, done.json())
                if done.status_code == 200:
                    session = client.get("/api/v1/session")
                    self._keep("session", session.status_code, session.json())

    def wait_for(self, count: int, timeout: float = 90) -> list[Answer]:
        """Every answer so far, once at least ``count`` more than now have come."""
        with self._lock:
            target = len(self.answers) + count
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.answers) >= target:
                    return list(self.answers)
            assert time.monotonic() < deadline, "the burst stopped answering"
            time.sleep(0.02)


def _every_connection_returned(server: LiveServer) -> None:
    """The pool holds no connection checked out once the burst is over (the mail
    worker takes one for a moment at each poll; a leaked one never comes back)."""
    pool = server.app.state.sekisho.database.engine.pool
    deadline = time.monotonic() + 30
    while pool.checkedout():
        assert time.monotonic() < deadline, f"{pool.checkedout()} connections never returned"
        time.sleep(0.01)


def test_a_restart_fails_closed_then_the_pool_recovers(
    cluster: PostgresCluster, smtp: SmtpCapture
) -> None:
    database_url = cluster.url("sekisho")
    port = free_port()
    server = LiveServer(settings_for(database_url, smtp.port, port, self_signup=True), port)
    server.start()
    try:
        with SignInBurst(server, smtp) as burst:
            before = burst.wait_for(30)
            cluster.stop()
            down_from = len(burst.answers)
            burst.wait_for(20)
            cluster.start()
            up_from = len(burst.answers)
            burst.wait_for(60)
        _every_connection_returned(server)
    finally:
        server.stop()
    ok = {("request", 202, ""), ("code", 200, ""), ("session", 200, "")}
    assert set(before) <= ok, set(before)
    answers = burst.answers
    during = set(answers[down_from:up_from])
    assert ("request", 503, "service_unavailable") in during
    assert during <= ok | {
        (what, 503, "service_unavailable") for what in ("request", "code", "session")
    }, during
    settled = answers[up_from:][-30:]
    assert set(settled) <= ok, set(settled)
    assert {what for what, _status, _error in settled} == {"request", "code", "session"}
    verified = run_sekisho(database_url, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
