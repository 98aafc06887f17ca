"""Prometheus metrics: off unless turned on, behind a bearer token at /metrics, or on a
port of their own; they count real sign-ins, refusals and the mail queue."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerFactory
from tests.support.cli import serving
from tests.support.outbox import wait_for_outbox
from tests.support.ports import free_port
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

TOKEN = "metrics-token-0123456789abcdef0123456789"


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def _value(body: str, name: str, **labels: str) -> float:
    return _samples(body).get((name, tuple(sorted(labels.items()))), 0.0)


def _sign_in(server: LiveServer, smtp: SmtpCapture, address: str, *, wrong_first: bool) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        flow = client.post("/api/v1/signin/email", json={"email": address}).json()["flow_id"]
        _link, code = link_and_code(smtp.wait_for(address))
        if wrong_first:
            wrong = ("1" if code[0] != "1" else "2") + code[1:]
            refused = client.post(f"/api/v1/signin/email/flows/{flow}/code", json={"code": wrong})
            assert refused.status_code == 400, refused.text
        done = client.post(f"/api/v1/signin/email/flows/{flow}/code", json={"code": code})
        assert done.status_code == 200, done.text


def test_metrics_need_the_token_and_count_what_happened(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(metrics_token=TOKEN, limit_sends_per_address="1/hour")
    server.add_user("counted@example.com")
    _sign_in(server, smtp, "counted@example.com", wrong_first=True)
    # The worker marks the message sent in a commit after the SMTP server has it: the
    # capture sees it first, and the outbox gauges read the table.
    wait_for_outbox(server, "SELECT count(*) = 0 FROM outbox WHERE status = 'pending'")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        limited = client.post("/api/v1/signin/email", json={"email": "counted@example.com"})
        assert limited.status_code == 429
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "x" * len(TOKEN)})
        assert wrong.status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    body = scraped.text
    assert _value(body, "sekisho_signins_total", method="email", outcome="success") == 1
    assert _value(body, "sekisho_signins_total", method="email", outcome="failure") == 1
    assert (
        _value(
            body,
            "sekisho_http_request_duration_seconds_count",
            route="/api/v1/signin/email/flows/{flow_id}/code",
            method="POST",
        )
        == 2
    )
    assert (
        _value(
            body,
            "sekisho_http_responses_total",
            route="/api/v1/signin/email",
            method="POST",
            status="429",
        )
        == 1
    )
    assert _value(body, "sekisho_rate_limit_refusals_total", limit="send-address") == 1
    assert _value(body, "sekisho_mail_outbox_messages", status="sent") == 1
    assert _value(body, "sekisho_mail_outbox_messages", status="pending") == 0
    assert _value(body, "sekisho_mail_oldest_pending_age_seconds") == 0
    assert ("sekisho_db_pool_checked_out", ()) in _samples(body)
    assert "counted@example.com" not in body


def test_metrics_are_off_by_default(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/metrics").status_code == 404
        bearer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"])
def test_metrics_on_a_port_of_their_own(backend: str, tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    with serving(tmp_path, port, SEKISHO_METRICS_PORT=str(metrics_port)):
        origin = {"Host": f"localhost:{port}"}
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", headers=origin).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", headers=origin).status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert scraped.status_code == 200
    assert (
        _value(
            scraped.text,
            "sekisho_http_request_duration_seconds_count",
            route="/healthz",
            method="GET",
        )
        == 1
    )
