"""Form handlers run their blocking work off the event loop (issue 7, defect 4).

A flood of password attempts, each spending a real argon2id verification, must leave
the other pages of the same process answering. The check is about order, not time:
once the first attempt of the flood has been answered (so the server has read them
all), a page asked for afterwards must answer while attempts of the flood are still
in flight. With the work on the event loop, that page queues behind the whole flood.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import ServerFactory
from tests.support.browser import FormBrowser

FLOOD = 32


def test_password_flood_leaves_other_pages_responsive(make_server: ServerFactory) -> None:
    server = make_server(limit_verify_per_ip="1000/hour")
    attackers = [FormBrowser(server.url) for _ in range(FLOOD)]
    for attacker in attackers:
        attacker.csrf()
    answered: list[int] = []
    first = threading.Event()
    lock = threading.Lock()

    def attempt(index: int) -> int:
        response = attackers[index].post(
            "/signin/password",
            {"email": f"nobody{index}@example.com", "password": "not the password"},
        )
        with lock:
            answered.append(index)
        first.set()
        return response.status_code

    try:
        with ThreadPoolExecutor(max_workers=FLOOD) as pool:
            results = [pool.submit(attempt, index) for index in range(FLOOD)]
            assert first.wait(timeout=120)
            with httpx.Client(base_url=server.url, timeout=120) as visitor:
                health = visitor.get("/healthz")
                with lock:
                    done_at_health = len(answered)
                signin = visitor.get("/signin")
                with lock:
                    done_at_signin = len(answered)
            statuses = [result.result() for result in results]
    finally:
        for attacker in attackers:
            attacker.close()

    assert health.status_code == 200
    assert signin.status_code == 200
    assert statuses == [400] * FLOOD
    assert done_at_health < FLOOD, "/healthz waited for the whole flood"
    assert done_at_signin < FLOOD, "/signin waited for the whole flood"
