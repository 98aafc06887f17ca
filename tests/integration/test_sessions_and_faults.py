"""SECURITY.md cases 27-29 (sessions), 33 (CSRF), 42-43 (abuse and faults)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.attestation import AttestedDeployment
from tests.support.authenticator import SoftAuthenticator
from tests.support.browser import FormBrowser
from tests.support.clock import SettableClock
from tests.support.outbox import wait_for_outbox
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.ports import free_port
from tests.support.redis import RedisServer
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

Browsers = Callable[..., FormBrowser]


def _sign_in(
    server: LiveServer, smtp: SmtpCapture, browser: FormBrowser, address: str, nth: int = 1
) -> None:
    flow = browser.request_email(address)
    _link, code = link_and_code(smtp.wait_for(address, nth))
    response = browser.post("/signin/email/code", {"flow": flow, "code": code})
    assert response.status_code == 303, response.text


def test_case27_new_session_token_at_sign_in_and_old_one_dies(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("sam@example.com")
    browser = browsers()
    _sign_in(server, smtp, browser, "sam@example.com")
    first = browser.session_cookie()
    assert first is not None
    _sign_in(server, smtp, browser, "sam@example.com", nth=2)
    second = browser.session_cookie()
    assert second is not None
    assert second != first
    with httpx.Client(base_url=server.url, cookies={"sekisho_session": first}) as stale:
        assert stale.get("/api/v1/session").status_code == 401
    assert browser.signed_in()


def test_case27_cookie_attributes_in_development(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("tao@example.com")
    browser = browsers()
    flow = browser.request_email("tao@example.com")
    _link, code = link_and_code(smtp.wait_for("tao@example.com"))
    response = browser.post("/signin/email/code", {"flow": flow, "code": code})
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("sekisho_session=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in attributes
    assert "path=/" in attributes
    assert "samesite=lax" in attributes
    assert not any(part.startswith("domain") for part in attributes)


def test_case27_cookie_attributes_with_https_origin(make_server: ServerFactory) -> None:
    server = make_server(public_origin="https://id.example")
    with server.client() as client:
        response = client.get("/signin")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-sekisho_csrf=")
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "path=/", "samesite=lax"} <= attributes
    assert not any(part.startswith("domain") for part in attributes)
    assert "max-age=63072000" in response.headers["strict-transport-security"]


def test_case28_sign_out_is_refused_at_once_on_every_instance(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    first, second = make_server(), make_server()
    first.add_user("uma@example.com")
    browser = FormBrowser(first.url)
    _sign_in(first, smtp, browser, "uma@example.com")
    token = browser.session_cookie()
    with httpx.Client(base_url=second.url, cookies={"sekisho_session": str(token)}) as other:
        assert other.get("/api/v1/session").status_code == 200
        assert browser.post("/signout", {}).status_code == 303
        assert other.get("/api/v1/session").status_code == 401
    with httpx.Client(base_url=first.url, cookies={"sekisho_session": str(token)}) as replay:
        assert replay.get("/api/v1/session").status_code == 401
        assert replay.get("/account").headers["location"] == "/signin"
    browser.close()


def test_case28_sign_out_everywhere_else(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("val@example.com")
    laptop, phone = browsers(), browsers()
    _sign_in(server, smtp, laptop, "val@example.com")
    _sign_in(server, smtp, phone, "val@example.com", nth=2)
    sessions = laptop.http.get("/api/v1/sessions").json()
    assert len(sessions) == 2
    assert laptop.post("/account/sessions/revoke-others", {}).status_code == 303
    assert laptop.signed_in()
    assert not phone.signed_in()


def _alive(client: httpx.Client) -> bool:
    return client.get("/api/v1/session").status_code == 200


def _passkey_session(
    server: LiveServer, client: httpx.Client, authenticator: SoftAuthenticator
) -> None:
    assert sign_in(server, client, authenticator).status_code == 200
    assert client.get("/api/v1/session").json()["aal"] == 2


def _timed_out(server: LiveServer) -> int:
    with server.database.engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM audit_events WHERE event = 'session.timed_out'")
            ).scalar_one()
        )


def test_case29_aal1_sessions_last_30_days_by_default(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    """NIST SP 800-63B-4 §2.1.3: an AAL1 session is reauthenticated within 30 days and
    needs no separate inactivity limit, so the idle default is the same 30 days."""
    clock = SettableClock()
    server = make_server(clock=clock)
    server.add_user("wen@example.com")
    with server.client() as idle, server.client() as busy:
        email_sign_in(server, smtp, idle, "wen@example.com")
        email_sign_in(server, smtp, busy, "wen@example.com")
        assert idle.get("/api/v1/session").json()["aal"] == 1
        for _ in range(29):
            clock.advance(timedelta(days=1))
            assert _alive(busy)
        clock.advance(timedelta(days=1) - timedelta(minutes=1))
        assert _alive(idle), "29 days 23 hours unused is within the AAL1 limits"
        clock.advance(timedelta(minutes=1))
        assert not _alive(busy), "30 days after sign-in, however active"
        assert not _alive(idle)
    assert _timed_out(server) == 2


def test_case29_aal2_sessions_idle_1_hour_and_24_hours_in_all_by_default(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    """NIST SP 800-63B-4 §2.2.3: AAL2 at most 1 hour idle and 24 hours overall; an email
    (AAL1) session of the same user is not held to the AAL2 limits."""
    clock = SettableClock()
    server = make_server(clock=clock)
    server.add_user("tia@example.com")
    authenticator = SoftAuthenticator()
    with server.client() as idle, server.client() as busy, server.client() as by_email:
        email_sign_in(server, smtp, by_email, "tia@example.com")
        assert register(server, by_email, authenticator).status_code == 201
        _passkey_session(server, idle, authenticator)
        _passkey_session(server, busy, authenticator)
        clock.advance(timedelta(minutes=59))
        assert _alive(idle), "59 minutes unused is within the AAL2 idle limit"
        clock.advance(timedelta(hours=1))
        assert not _alive(idle), "an hour unused since its last request"
        assert not _alive(busy)
        _passkey_session(server, busy, authenticator)
        for _ in range(47):
            clock.advance(timedelta(minutes=30))
            assert _alive(busy)
        clock.advance(timedelta(minutes=30))
        assert not _alive(busy), "24 hours after sign-in, however active"
        assert _alive(by_email), "the AAL1 session, unused for a day, lives on"


def test_case29_aal3_sessions_idle_15_minutes_and_12_hours_in_all_by_default(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """NIST SP 800-63B-4 §2.3.3: AAL3 (an attested, allow-listed, device-bound key) at
    most 15 minutes idle and 12 hours overall."""
    attested = AttestedDeployment(tmp_path / "attestation-root.pem")
    clock = SettableClock()
    server = make_server(clock=clock, **attested.settings())
    server.add_user("ken@example.com")
    key = attested.key()
    with server.client() as idle, server.client() as busy:
        email_sign_in(server, smtp, idle, "ken@example.com")
        assert register(server, idle, key).status_code == 201
        for client in (idle, busy):
            assert sign_in(server, client, key).json()["aal"] == 3
        clock.advance(timedelta(minutes=14))
        assert _alive(idle), "14 minutes unused is within the AAL3 idle limit"
        clock.advance(timedelta(minutes=15))
        assert not _alive(idle), "15 minutes unused since its last request"
        assert not _alive(busy)
        assert sign_in(server, busy, key).json()["aal"] == 3
        for _ in range(71):
            clock.advance(timedelta(minutes=10))
            assert _alive(busy)
        clock.advance(timedelta(minutes=10))
        assert not _alive(busy), "12 hours after sign-in, however active"


@pytest.mark.parametrize(
    ("setting", "limit"),
    [("session_idle_timeout", timedelta(hours=2)), ("session_absolute_timeout", timedelta(days=3))],
)
def test_case29_the_aal1_limits_are_settings(
    make_server: ServerFactory, smtp: SmtpCapture, setting: str, limit: timedelta
) -> None:
    clock = SettableClock()
    server = make_server(clock=clock, **{setting: limit})
    server.add_user("ash@example.com")
    with server.client() as client:
        email_sign_in(server, smtp, client, "ash@example.com")
        clock.advance(limit - timedelta(minutes=1))
        assert _alive(client)
        clock.advance(timedelta(minutes=1))
        assert _alive(client) is (setting == "session_idle_timeout"), (
            "a request a minute ago restarted the idle clock; the absolute one kept running"
        )
        clock.advance(limit)
        assert not _alive(client)


def test_case33_cross_site_posts_are_refused(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("xia@example.com")
    browser = browsers()
    _sign_in(server, smtp, browser, "xia@example.com")
    no_token = browser.http.post("/account/sessions/revoke-others", data={"anything": "1"})
    assert no_token.status_code == 403
    foreign = browser.http.post(
        "/account/sessions/revoke-others",
        data={"csrf_token": browser.csrf()},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    cross_site = browser.post("/signout", {}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    sandboxed = browser.post(
        "/signout", {}, headers={"Sec-Fetch-Site": "cross-site", "Origin": "null"}
    )
    assert sandboxed.status_code == 403
    sibling = browser.post("/signout", {}, headers={"Sec-Fetch-Site": "same-site"})
    assert sibling.status_code == 403
    text_plain = browser.http.post(
        "/api/v1/signin/email",
        content='{"email":"xia@example.com"}',
        headers={"Content-Type": "text/plain"},
    )
    assert text_plain.status_code == 415
    api_foreign = browser.http.delete("/api/v1/session", headers={"Origin": "https://evil.example"})
    assert api_foreign.status_code == 403
    assert browser.signed_in()


def test_bad_input_gets_stable_codes_never_a_trace(server: LiveServer, browsers: Browsers) -> None:
    browser = browsers()
    cases = [
        (
            browser.http.post(
                "/api/v1/signin/email",
                content="{not json",
                headers={"Content-Type": "application/json"},
            ),
            400,
            "invalid_request",
        ),
        (
            browser.http.post(
                "/api/v1/signin/email",
                content=b"x" * 70000,
                headers={"Content-Type": "application/json"},
            ),
            413,
            "payload_too_large",
        ),
        (
            browser.http.post("/signin/email", json={"email": "a@example.com"}),
            415,
            "unsupported_media_type",
        ),
        (browser.http.get("/api/v1/nothing-here"), 404, "not_found"),
        (browser.http.put("/api/v1/session"), 405, "method_not_allowed"),
        (browser.http.get("/api/v1/session"), 401, "not_authenticated"),
        (browser.http.get("/api/v1/signin/email/flows/unknown"), 400, "invalid_or_expired"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (response.request.url, response.text)
        if response.headers["content-type"].startswith("application/json"):
            assert response.json()["error"] == code
        else:
            assert f'data-error="{code}"' in response.text
        assert "Traceback" not in response.text


def test_case42_flood_for_one_address_is_capped(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(limit_sends_per_address="3/hour")
    server.add_user("yui@example.com")
    statuses = []
    for _ in range(6):
        with server.client() as client:
            statuses.append(
                client.post("/api/v1/signin/email", json={"email": "yui@example.com"}).status_code
            )
    assert statuses == [202, 202, 202, 429, 429, 429]
    smtp.wait_for("yui@example.com", 1)
    time.sleep(0.5)
    assert 1 <= len(smtp.to("yui@example.com")) <= 3
    with server.client() as client:
        limited = client.post("/api/v1/signin/email", json={"email": "yui@example.com"})
        assert int(limited.headers["retry-after"]) > 0
        assert limited.json()["error"] == "rate_limited"
        assert client.get("/healthz").status_code == 200


def test_case43_smtp_down_then_up_delivers_the_queued_message(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    smtp.stop()
    server = make_server()
    server.add_user("zen@example.com")
    with server.client() as client:
        response = client.post("/api/v1/signin/email", json={"email": "zen@example.com"})
    assert response.status_code == 202
    wait_for_outbox(server, "SELECT last_error IS NOT NULL FROM outbox")
    with server.database.engine.connect() as connection:
        row = connection.execute(text("SELECT status, attempts, last_error FROM outbox")).one()
    assert row[0] == "pending"
    assert row[1] >= 1
    assert row[2]
    smtp.start()
    message = smtp.wait_for("zen@example.com", timeout=15)
    assert link_and_code(message)
    # The worker settles a message after the SMTP server has taken it: wait for that commit.
    wait_for_outbox(server, "SELECT status <> 'pending' FROM outbox")
    with server.database.engine.connect() as connection:
        status, payload = connection.execute(
            text("SELECT status, sealed_payload FROM outbox")
        ).one()
    assert status == "sent"
    assert payload is None


def test_case43_restart_keeps_queued_mail(make_server: ServerFactory, smtp: SmtpCapture) -> None:
    # The first instance queues and never tries: what is kept across the restart is the
    # queue itself (a worker stopped mid-send: the next test).
    smtp.stop()
    first = make_server(mail_worker=False)
    first.add_user("ada@example.com")
    with httpx.Client(base_url=first.url) as client:
        assert (
            client.post("/api/v1/signin/email", json={"email": "ada@example.com"}).status_code
            == 202
        )
    first.stop()
    smtp.start()
    make_server()
    assert link_and_code(smtp.wait_for("ada@example.com", timeout=15))


def test_case43_a_server_stopped_mid_send_gives_its_mail_back(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    # An SMTP server that takes the connection and never greets: the worker is in the
    # middle of its send when the server stops (a rolling restart). Kept, the claim's
    # lease (120 s) would hold the message back from the next instance.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(30)
        first = make_server(smtp_port=silent.getsockname()[1], smtp_timeout_seconds=60)
        first.add_user("eve@example.com")
        with httpx.Client(base_url=first.url) as client:
            response = client.post("/api/v1/signin/email", json={"email": "eve@example.com"})
        assert response.status_code == 202
        connection, _address = silent.accept()
        with connection:
            first.stop()
    with first.database.engine.connect() as database:
        row = database.execute(text("SELECT status, locked_until, attempts FROM outbox")).one()
    assert tuple(row) == ("pending", None, 0)
    make_server()
    assert link_and_code(smtp.wait_for("eve@example.com", timeout=15))


def test_case43_redis_down_falls_back_or_fails_closed(make_server: ServerFactory) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    fallback = make_server(redis_url=dead_redis, limit_sends_per_address="2/hour")
    statuses = []
    for _ in range(3):
        with httpx.Client(base_url=fallback.url) as client:
            statuses.append(
                client.post("/api/v1/signin/email", json={"email": "bea@example.com"}).status_code
            )
    assert statuses == [202, 202, 429]
    closed = make_server(redis_url=dead_redis, rate_limit_fallback="fail_closed")
    with httpx.Client(base_url=closed.url) as client:
        refused = client.post("/api/v1/signin/email", json={"email": "bea@example.com"})
    assert refused.status_code == 503
    assert refused.json()["error"] == "service_unavailable"


def test_redis_limits_are_shared_between_instances(make_server: ServerFactory) -> None:
    # A Redis of the test's own: the machine's, shared with other runs of this suite,
    # could hold (or flush) the same database's counters for the same address.
    redis_server = RedisServer().start()
    try:
        first = make_server(redis_url=redis_server.url, limit_sends_per_address="2/hour")
        second = make_server(redis_url=redis_server.url, limit_sends_per_address="2/hour")
        statuses = []
        for instance in (first, second, first, second):
            with httpx.Client(base_url=instance.url) as client:
                statuses.append(
                    client.post(
                        "/api/v1/signin/email", json={"email": "cy@example.com"}
                    ).status_code
                )
    finally:
        redis_server.kill()
    assert statuses == [202, 202, 429, 429]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_case43_database_down_fails_closed(make_server: ServerFactory) -> None:
    server = make_server()
    name = server.settings.database_url.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
    try:
        with httpx.Client(base_url=server.url, cookies={"sekisho_session": "x"}) as client:
            responses = [
                client.post("/api/v1/signin/email", json={"email": "dee@example.com"}),
                client.get("/api/v1/session"),
                client.get("/signin/email/link?token=abc"),
                client.get("/readyz"),
            ]
            for response in responses:
                assert response.status_code == 503, response.text
                assert "Traceback" not in response.text
                assert "sekisho_session" not in response.headers.get("set-cookie", "")
            assert client.get("/healthz").status_code == 200
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_case44_flow_begun_on_one_instance_finishes_on_another(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    first, second = make_server(), make_server()
    first.add_user("eve@example.com")
    on_first = FormBrowser(first.url)
    flow = on_first.request_email("eve@example.com")
    _link, code = link_and_code(smtp.wait_for("eve@example.com"))
    with httpx.Client(base_url=second.url, cookies=dict(on_first.http.cookies)) as on_second:
        done = on_second.post(
            "/signin/email/code", data={"csrf_token": on_first.csrf(), "flow": flow, "code": code}
        )
        assert done.status_code == 303
        assert on_second.get("/api/v1/session").status_code == 200
    on_first.close()


def test_disabling_an_account_ends_its_sessions(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("fin@example.com")
    browser = browsers()
    _sign_in(server, smtp, browser, "fin@example.com")
    assert browser.signed_in()
    database = server.database
    with database.transaction() as repos:
        assert repos.users.set_status("fin@example.com", "disabled", now=datetime.now(UTC))
    database.dispose()
    assert not browser.signed_in()
    with server.database.engine.connect() as connection:
        reason = connection.execute(text("SELECT revoked_reason FROM sessions")).scalar_one()
    assert reason == "account_disabled"


def test_case43_mail_for_an_ended_flow_is_not_sent(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    smtp.stop()
    server = make_server()
    server.add_user("gil@example.com")
    with server.client() as client:
        for _ in range(2):
            assert (
                client.post("/api/v1/signin/email", json={"email": "gil@example.com"}).status_code
                == 202
            )
    # A delivery of the first message decided before the second request superseded its
    # flow may still be on its way to SMTP; once the second message has been tried (its
    # claim came after the superseding commit), every later decision sees the flow ended.
    wait_for_outbox(server, "SELECT last_error IS NOT NULL FROM outbox ORDER BY id DESC LIMIT 1")
    smtp.start()
    smtp.wait_for("gil@example.com", timeout=15)
    wait_for_outbox(server, "SELECT count(*) = 0 FROM outbox WHERE status = 'pending'")
    assert len(smtp.to("gil@example.com")) == 1
    with server.database.engine.connect() as connection:
        statuses = sorted(connection.execute(text("SELECT status FROM outbox")).scalars())
    assert statuses == ["dropped", "sent"]


def test_case56_a_message_sealed_under_another_key_is_never_failed(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    smtp.stop()
    server = make_server()
    server.add_user("hal@example.com")
    with server.client() as client:
        assert (
            client.post("/api/v1/signin/email", json={"email": "hal@example.com"}).status_code
            == 202
        )
    failed_once = False
    while not failed_once:
        time.sleep(0.02)
        with server.database.engine.connect() as connection:
            last_error = connection.execute(text("SELECT last_error FROM outbox")).scalar_one()
            failed_once = last_error is not None
    with server.database.engine.begin() as connection:
        attempts = connection.execute(text("SELECT attempts FROM outbox")).scalar_one()
        connection.execute(text("UPDATE outbox SET sealed_payload = 'sealed-with-another-key'"))
    smtp.start()
    skipped = 0
    deadline = time.monotonic() + 10
    while skipped == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        with server.database.engine.connect() as connection:
            skipped = connection.execute(
                text("SELECT count(*) FROM audit_events WHERE event = 'mail.skipped'")
            ).scalar_one()
    time.sleep(0.5)
    with server.database.engine.connect() as connection:
        status, after = connection.execute(text("SELECT status, attempts FROM outbox")).one()
        skipped = connection.execute(
            text("SELECT count(*) FROM audit_events WHERE event = 'mail.skipped'")
        ).scalar_one()
    assert (status, after, skipped) == ("pending", attempts, 1)
