"""Redis, which holds the shared rate-limit counters, dies in the middle of a run and
comes back (SECURITY.md case 43; docs/deployment.md, "When a dependency is down").

The design: with ``rate_limit_fallback = memory`` (the default) each instance goes on
limiting in its own memory, so sign-in keeps working; with ``fail_closed`` every request
that checks a limit gets 503 ``service_unavailable``. Never a 500, never an unlimited
request, and shared counting resumes by itself once Redis is back. The Redis here is
the test's own (tests/support/redis.py); the machine's is never touched.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import ServerFactory
from tests.support.redis import RedisServer
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

pytestmark = [pytest.mark.deployment, pytest.mark.parametrize("backend", ["postgresql"])]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.kill()


class Burst:
    """Threads asking for sign-in emails (each for a new address) on every instance
    until stopped, keeping every answer: (status, error code)."""

    def __init__(self, instances: list[LiveServer], threads: int = 4) -> None:
        self.answers: list[tuple[int, str]] = []
        self._instances = instances
        self._stop = threading.Event()
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def __enter__(self) -> Burst:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self) -> None:
        clients = [instance.client() for instance in self._instances]
        try:
            while not self._stop.is_set():
                number = next(self._numbers)
                client = clients[number % len(clients)]
                response = client.post(
                    "/api/v1/signin/email", json={"email": f"burst{number}@example.com"}
                )
                error = response.json().get("error", "") if response.status_code != 202 else ""
                with self._lock:
                    self.answers.append((response.status_code, error))
        finally:
            for client in clients:
                client.close()

    def wait_for(self, count: int, timeout: float = 60) -> list[tuple[int, str]]:
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


def _limits_counted_in(
    redis_server: RedisServer, instance: LiveServer, *, timeout: float, refusing: bool = False
) -> None:
    """Ask for emails on ``instance`` until its counters show up in Redis again (an
    instance goes back to Redis at most RETRY_SHARED_AFTER_SECONDS after a failure;
    ``refusing``: until then it answers 503, as ``fail_closed`` says)."""
    deadline = time.monotonic() + timeout
    with instance.client() as client:
        for number in itertools.count():
            response = client.post(
                "/api/v1/signin/email", json={"email": f"probe{number}@example.com"}
            )
            assert response.status_code in ((202, 503) if refusing else (202,)), response.text
            if redis_server.client().keys("LIMITS*"):
                return
            assert time.monotonic() < deadline, "the instance never went back to Redis"
            time.sleep(0.1)


def test_memory_fallback_keeps_sign_in_working_and_sharing_resumes(
    make_server: ServerFactory, redis_server: RedisServer, smtp: SmtpCapture
) -> None:
    settings = {"redis_url": redis_server.url, "limit_sends_per_address": "2/hour"}
    first, second = make_server(**settings), make_server(**settings)
    first.add_user("kim@example.com")
    with Burst([first, second]) as burst:
        burst.wait_for(20)
        redis_server.kill()
        during = burst.wait_for(40)
        # Signing in needs a limit check too (the code is a verification).
        with first.client() as client:
            started = client.post("/api/v1/signin/email", json={"email": "kim@example.com"})
            assert started.status_code == 202
            _link, code = link_and_code(smtp.wait_for("kim@example.com"))
            flow = started.json()["flow_id"]
            done = client.post(f"/api/v1/signin/email/flows/{flow}/code", json={"code": code})
            assert done.status_code == 200, done.text
        redis_server.start()
        after = burst.wait_for(20)
    assert set(during) == {(202, "")}
    assert set(after) == {(202, "")}
    for instance in (first, second):
        _limits_counted_in(redis_server, instance, timeout=30)
    # Shared again: two for the address across both instances, then refused on both.
    statuses = []
    for instance in (first, second, first, second):
        with instance.client() as client:
            response = client.post("/api/v1/signin/email", json={"email": "lee@example.com"})
            statuses.append(response.status_code)
    assert statuses == [202, 202, 429, 429]


def test_fail_closed_answers_503_while_redis_is_down_and_recovers(
    make_server: ServerFactory, redis_server: RedisServer
) -> None:
    server = make_server(redis_url=redis_server.url, rate_limit_fallback="fail_closed")
    with Burst([server]) as burst:
        before = burst.wait_for(10)
        redis_server.kill()
        burst.wait_for(30)
        with server.client() as client:
            refused = client.post("/api/v1/signin/email", json={"email": "mo@example.com"})
            page = client.post("/signin/email", data={"email": "mo@example.com"})
            assert client.get("/readyz").status_code == 200  # Redis is not the database
        redis_server.start()
        _limits_counted_in(redis_server, server, timeout=30, refusing=True)
        after = burst.wait_for(10)
    assert set(before) == {(202, "")}
    assert refused.status_code == 503
    assert refused.json()["error"] == "service_unavailable"
    assert "Traceback" not in refused.text
    assert page.status_code in (403, 503)  # no CSRF token here: refused either way, never 500
    answers = set(burst.answers)
    assert answers <= {(202, ""), (503, "service_unavailable")}, answers
    assert (503, "service_unavailable") in answers
    assert after[-1] == (202, "")
