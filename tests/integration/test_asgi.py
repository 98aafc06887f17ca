"""``uvicorn --factory sekisho.asgi:create``: settings from the environment, and the
client address taken from ``X-Forwarded-For`` only when a proxy in
``forwarded_allow_ips`` sent it, without uvicorn's own proxy handling
(``--no-proxy-headers``). The per-IP limit shows which address Sekisho counted."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.support.ports import free_port
from tests.support.server import SECRET_KEY

TRUSTED_PROXY = "127.0.0.2"


@contextlib.contextmanager
def _factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **environment: str) -> Iterator[str]:
    """``uvicorn --factory sekisho.asgi:create`` with one send per IP an hour."""
    port = free_port()
    for name, value in {
        "SEKISHO_PUBLIC_ORIGIN": f"http://127.0.0.1:{port}",
        "SEKISHO_DATABASE_URL": f"sqlite:///{tmp_path}/factory.db",
        "SEKISHO_SECRET_KEY": SECRET_KEY,
        "SEKISHO_MAIL_WORKER": "false",
        "SEKISHO_LIMIT_SENDS_PER_IP": "1/hour",
        **environment,
    }.items():
        monkeypatch.setenv(name, value)
    config = uvicorn.Config(
        "sekisho.asgi:create",
        factory=True,
        host="127.0.0.1",
        port=port,
        proxy_headers=False,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "server did not start"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def factory_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with _factory(tmp_path, monkeypatch, SEKISHO_FORWARDED_ALLOW_IPS=f"{TRUSTED_PROXY}/32") as url:
        yield url


def _request_from(url: str, source: str, forwarded_for: str, address: str) -> int:
    transport = httpx.HTTPTransport(local_address=source)
    with contextlib.closing(transport), httpx.Client(base_url=url, transport=transport) as client:
        response = client.post(
            "/api/v1/signin/email",
            json={"email": address},
            headers={"X-Forwarded-For": forwarded_for},
        )
    return response.status_code


def test_forwarded_for_is_believed_from_a_listed_proxy_only(factory_url: str) -> None:
    through_proxy = [
        _request_from(factory_url, TRUSTED_PROXY, "198.51.100.1", "a1@example.com"),
        _request_from(factory_url, TRUSTED_PROXY, "198.51.100.2", "a2@example.com"),
        # A client's own header is left of what its proxy appended: not taken.
        _request_from(factory_url, TRUSTED_PROXY, "198.51.100.1, 198.51.100.3", "a3@example.com"),
        _request_from(factory_url, TRUSTED_PROXY, "198.51.100.2", "a4@example.com"),
    ]
    assert through_proxy == [202, 202, 202, 429]
    direct = [
        _request_from(factory_url, "127.0.0.1", "198.51.100.4", "b1@example.com"),
        _request_from(factory_url, "127.0.0.1", "198.51.100.5", "b2@example.com"),
    ]
    assert direct == [202, 429]


def test_by_default_no_peer_is_a_proxy_so_a_local_client_cannot_rotate_its_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker on the same host (or a tester on loopback) writing a new
    ``X-Forwarded-For`` on every request is still one client: nothing is trusted
    until ``forwarded_allow_ips`` names the proxy."""
    monkeypatch.delenv("SEKISHO_FORWARDED_ALLOW_IPS", raising=False)
    with _factory(tmp_path, monkeypatch) as url:
        rotated = [
            _request_from(url, "127.0.0.1", f"198.51.100.{n}", f"c{n}@example.com")
            for n in (1, 2, 3)
        ]
    assert rotated == [202, 429, 429]
