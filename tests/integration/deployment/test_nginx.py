"""docs/deployment.md as written: Debian's nginx terminating TLS in front of two
``sekisho serve`` processes in production mode, which share one PostgreSQL database and
one Redis, with mail delivered by ``sekisho mail worker`` in a process of its own.

A person signs in by email code through the proxy; the session works on both
instances; the rate limits are counted once for both (Redis); and the client address
Sekisho sees, records and mails is the one nginx forwarded, not one the client wrote
into ``X-Forwarded-For`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.cli import ServeOutput, run_sekisho, running, serving
from tests.support.nginx import NginxProxy
from tests.support.ports import free_port
from tests.support.redis import RedisServer
from tests.support.server import fresh_database
from tests.support.smtp import SmtpCapture, link_and_code, text_of

pytestmark = pytest.mark.deployment

CLIENT = "127.0.0.3"  # the address the test's "browser" connects to nginx from
SPOOFED = "203.0.113.66"  # what that browser claims in its own X-Forwarded-For
SESSION = "__Host-sekisho_session"


@dataclass
class Deployment:
    proxy: NginxProxy
    instances: list[ServeOutput]
    ports: list[int]
    redis: RedisServer
    smtp: SmtpCapture


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Started once for this module's tests (each sign-in uses its own address)."""
    tmp_path = tmp_path_factory.mktemp("deployment")
    smtp = SmtpCapture()
    smtp.start()
    redis_server = RedisServer().start()
    try:
        with fresh_database("postgresql", tmp_path) as database_url:
            ports = [free_port(), free_port()]
            proxy = NginxProxy(tmp_path / "nginx", ports)
            env = {
                "SEKISHO_MODE": "production",
                "SEKISHO_PUBLIC_ORIGIN": proxy.origin,
                "SEKISHO_DATABASE_URL": database_url,
                "SEKISHO_REDIS_URL": redis_server.url,
                "SEKISHO_AUTO_MIGRATE": "false",
                "SEKISHO_MAIL_WORKER": "false",
                "SEKISHO_MAIL_BACKEND": "smtp",
                "SEKISHO_MAIL_FROM": "Sign-in <no-reply@example.com>",
                "SEKISHO_SMTP_HOST": "127.0.0.1",
                "SEKISHO_SMTP_PORT": str(smtp.port),
                "SEKISHO_SMTP_SECURITY": "none",
                "SEKISHO_MAIL_POLL_SECONDS": "0.05",
                "SEKISHO_ACCEPT_REQUEST_ID": "true",
                "SEKISHO_FORWARDED_ALLOW_IPS": "127.0.0.1",  # nginx on this host
                "SEKISHO_LIMIT_SENDS_PER_ADDRESS": "2/hour",
            }
            for command in (["db", "upgrade"], ["users", "add", "ana@example.com"]):
                done = run_sekisho(database_url, *command)
                assert done.returncode == 0, done.stderr
            with (
                running(tmp_path, "mail", "worker", ready="delivering", **env),
                serving(tmp_path, ports[0], **env) as first,
                serving(tmp_path, ports[1], **env) as second,
            ):
                proxy.start()
                try:
                    yield Deployment(proxy, [first, second], ports, redis_server, smtp)
                finally:
                    proxy.stop()
    finally:
        redis_server.kill()
        smtp.stop()


def _browser(proxy: NginxProxy) -> httpx.Client:
    """A client that reaches nginx from ``CLIENT`` over TLS and claims ``SPOOFED``."""
    transport = httpx.HTTPTransport(local_address=CLIENT, verify=proxy.tls())
    return httpx.Client(
        base_url=proxy.origin,
        transport=transport,
        headers={"X-Forwarded-For": SPOOFED, "X-Request-ID": "chosen-by-the-client"},
        timeout=30,
    )


def test_sign_in_through_nginx_works_on_both_instances(deployment: Deployment) -> None:
    smtp = deployment.smtp
    with _browser(deployment.proxy) as browser:
        assert browser.get("/signin").status_code == 200
        started = browser.post("/api/v1/signin/email", json={"email": "ana@example.com"})
        assert started.status_code == 202, started.text
        message = smtp.wait_for("ana@example.com", timeout=30)
        link, code = link_and_code(message)
        assert link.startswith(f"{deployment.proxy.origin}/signin/email/link?token=")
        assert CLIENT in text_of(message)  # who asked (SECURITY.md case 11)
        assert SPOOFED not in text_of(message)
        flow = started.json()["flow_id"]
        signed_in = browser.post(f"/api/v1/signin/email/flows/{flow}/code", json={"code": code})
        assert signed_in.status_code == 200, signed_in.text
        session_id = signed_in.json()["session_id"]
        token = browser.cookies[SESSION]
        # Round robin: these alternate between the two instances.
        for _ in range(4):
            current = browser.get("/api/v1/session")
            assert current.status_code == 200
            assert current.json()["session_id"] == session_id
            assert re.fullmatch(r"[0-9a-f]{32}", current.headers["x-request-id"])
        sessions = browser.get("/api/v1/sessions").json()
        assert [item["ip"] for item in sessions] == [CLIENT]
        request_id = current.headers["x-request-id"]
    assert request_id in deployment.proxy.access_log()  # nginx's $request_id, end to end
    for instance, port in zip(deployment.instances, deployment.ports, strict=True):
        instance.wait_for(f'{CLIENT} "GET /api/v1/session" 200')
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as direct:
            answer = direct.get("/api/v1/session", headers={"Cookie": f"{SESSION}={token}"})
        assert answer.status_code == 200
        assert answer.json()["session_id"] == session_id


def test_rate_limits_are_counted_once_for_both_instances(deployment: Deployment) -> None:
    with _browser(deployment.proxy) as browser:
        statuses = [
            browser.post("/api/v1/signin/email", json={"email": "bo@example.com"}).status_code
            for _ in range(4)
        ]
    # 2 an hour for the address: each instance alone would have allowed 2.
    assert statuses == [202, 202, 429, 429]
    for instance in deployment.instances:
        instance.wait_for(f'{CLIENT} "POST /api/v1/signin/email" 429')
    assert deployment.redis.client().keys("LIMITS*")
