"""Form handlers run their blocking work off the event loop (issue 7, defect 4).

A flood of password attempts, each spending a real argon2id verification, must leave
the other pages of the same process answering. The check is about order, not time: the
test holds every attempt of the flood at the door of its work (in this process: the
server runs in a thread of the test) until the flood is all inside at once and two
other pages have answered. With the work on the event loop, the first attempt held
would hold the loop: the rest of the flood would never get in, and no page would answer.
Then the flood is let go through the real verification and answered as usual.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from sekisho.core.completion import IssuedSession
from tests.conftest import ServerFactory
from tests.support.browser import FormBrowser

FLOOD = 32
PATIENCE = 60.0


def test_password_flood_leaves_other_pages_responsive(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(limit_verify_per_ip="1000/hour")
    service = server.app.state["sekisho"]
    verify = service.sign_in_with_password
    inside = threading.Semaphore(0)
    let_go = threading.Event()

    def held(**kwargs: Any) -> IssuedSession:
        inside.release()
        let_go.wait(timeout=PATIENCE)
        result: IssuedSession = verify(**kwargs)
        return result

    monkeypatch.setattr(service, "sign_in_with_password", held)
    attackers = [FormBrowser(server.url) for _ in range(FLOOD)]
    for attacker in attackers:
        attacker.csrf()
    answered: list[int] = []
    lock = threading.Lock()

    def attempt(index: int) -> int:
        response = attackers[index].post(
            "/signin/password",
            {"email": f"nobody{index}@example.com", "password": "not the password"},
        )
        with lock:
            answered.append(index)
        return response.status_code

    try:
        with ThreadPoolExecutor(max_workers=FLOOD) as pool:
            results = [pool.submit(attempt, index) for index in range(FLOOD)]
            deadline = time.monotonic() + PATIENCE
            entered = 0
            while entered < FLOOD and inside.acquire(timeout=deadline - time.monotonic()):
                entered += 1
            with httpx.Client(base_url=server.url, timeout=PATIENCE) as visitor:
                health = visitor.get("/healthz")
                signin = visitor.get("/signin")
            with lock:
                answered_before = len(answered)
            let_go.set()
            statuses = [result.result() for result in results]
    finally:
        let_go.set()
        for attacker in attackers:
            attacker.close()

    assert entered == FLOOD, "the attempts did not run side by side off the event loop"
    assert health.status_code == 200
    assert signin.status_code == 200
    assert answered_before == 0
    assert statuses == [400] * FLOOD
