"""Request ids: in the response header, in the audit events a request writes, and in the
JSON access log of a real ``sekisho serve`` process."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.cli import serving
from tests.support.ports import free_port
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

OFFERED = "proxy-request-0001"


def _sign_in(server: LiveServer, smtp: SmtpCapture, address: str, offered: str) -> str:
    """Sign in with the code; the id the server gave the request that finished it."""
    server.add_user(address)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        started = client.post("/api/v1/signin/email", json={"email": address})
        assert started.status_code == 202, started.text
        _link, code = link_and_code(smtp.wait_for(address))
        done = client.post(
            f"/api/v1/signin/email/flows/{started.json()['flow_id']}/code",
            json={"code": code},
            headers={"X-Request-ID": offered},
        )
        assert done.status_code == 200, done.text
        return done.headers["X-Request-ID"]


def _audited(server: LiveServer, event: str, address: str) -> list[str | None]:
    with server.database.engine.connect() as connection:
        return list(
            connection.execute(
                text("SELECT request_id FROM audit_events WHERE event = :e AND email = :a"),
                {"e": event, "a": address},
            ).scalars()
        )


def test_an_id_from_the_client_is_not_taken_by_default(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    given = _sign_in(server, smtp, "plain@example.com", OFFERED)
    assert given != OFFERED
    assert len(given) == 32
    assert _audited(server, "signin.succeeded", "plain@example.com") == [given]
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/healthz").headers["X-Request-ID"]
        assert client.get("/healthz").headers["X-Request-ID"] != first


def test_a_trusted_proxys_well_formed_id_is_kept(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(accept_request_id=True)
    assert _sign_in(server, smtp, "proxied@example.com", OFFERED) == OFFERED
    assert _audited(server, "signin.succeeded", "proxied@example.com") == [OFFERED]
    with httpx.Client(base_url=server.url) as client:
        for malformed in ("short", "x" * 65, "two words here", "line\\nbreak-forged"):
            answered = client.get("/healthz", headers={"X-Request-ID": malformed})
            assert answered.headers["X-Request-ID"] != malformed
            assert len(answered.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize("backend", ["sqlite"])
def test_json_access_log_carries_the_request_id(backend: str, tmp_path: Path) -> None:
    port = free_port()
    with serving(
        tmp_path, port, SEKISHO_LOG_FORMAT="json", SEKISHO_ACCEPT_REQUEST_ID="true"
    ) as console:
        answered = httpx.get(
            f"http://127.0.0.1:{port}/healthz?token=secret-token",
            headers={"X-Request-ID": OFFERED, "Host": f"localhost:{port}"},
        )
        assert answered.headers["X-Request-ID"] == OFFERED
        console.wait_for('"sekisho.access"')
    records = [json.loads(line) for line in console.lines]
    access = next(record for record in records if record["logger"] == "sekisho.access")
    assert access["request_id"] == OFFERED
    assert access["method"] == "GET"
    assert access["path"] == "/healthz"
    assert access["status"] == answered.status_code
    assert isinstance(access["duration_ms"], float)
    assert "secret-token" not in "".join(console.lines)
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)
