"""OpenID Connect Back-Channel Logout 1.0 over real HTTP: when a Sekisho session ends,
for whatever reason, each client that received tokens from it and registered a
``backchannel_logout_uri`` receives a logout token, checked here with joserfc against
the published JWKS; a client that is down receives it after it comes back (SECURITY.md
case 48)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.browser import FormBrowser
from tests.support.cli import run_sekisho, running
from tests.support.logout_receiver import LogoutReceiver
from tests.support.oidc import (
    Registered,
    code_for,
    exchange,
    register_client,
    sign_in_by_code,
    signed_in_browser,
    verify_id_token,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

EVENT = "http://schemas.openid.net/event/backchannel-logout"
FAST = {
    "backchannel_poll_seconds": 0.05,
    "backchannel_retry_base_seconds": 0.2,
    "backchannel_retry_max_seconds": 0.5,
}


def verify_logout_token(server: LiveServer, token: str, *, client_id: str) -> dict[str, Any]:
    """What a relying party checks (§2.6), with joserfc against the published JWKS."""
    with httpx.Client(timeout=30) as http:
        metadata = http.get(server.url + "/.well-known/openid-configuration").json()
        key_set = KeySet.import_key_set(http.get(metadata["jwks_uri"]).json())
    decoded = jwt.decode(token, key_set, algorithms=["ES256"])
    assert decoded.header["typ"] == "logout+jwt"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
    ).validate(decoded.claims)
    claims = dict(decoded.claims)
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims
    return claims


def _deliveries(server: LiveServer) -> list[dict[str, Any]]:
    with server.database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT client_id, session_id, status, attempts, reason "
                "FROM oidc_logout_deliveries ORDER BY id"
            )
        ).mappings()
        return [dict(row) for row in rows]


def _settled(server: LiveServer) -> list[dict[str, Any]]:
    """The deliveries once none is pending. The worker settles a delivery (its row and
    its audit event, in one transaction) after the receiver has answered, so a test
    that saw the token arrive must still wait for that commit."""
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    rows = _deliveries(server)
    while any(row["status"] == "pending" for row in rows) and datetime.now(UTC) < deadline:
        time.sleep(0.05)
        rows = _deliveries(server)
    return rows


def _audit(server: LiveServer, event: str) -> list[dict[str, Any]]:
    with server.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT user_id, session_id, detail FROM audit_events WHERE event = :e"),
            {"e": event},
        ).mappings()
        return [{**row, "detail": json.loads(row["detail"])} for row in rows]


def _tokens_for(
    server: LiveServer, browser: FormBrowser, client_id: str, secret: str | None
) -> dict[str, Any]:
    answer = exchange(server, Registered(client_id, secret), code_for(browser, client_id))
    assert answer.status_code == 200, answer.text
    return verify_id_token(server, answer.json()["id_token"], client_id=client_id)


def test_discovery_advertises_back_channel_logout(server: LiveServer) -> None:
    with server.client() as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True


def test_sign_out_delivers_a_signed_logout_token_to_each_client_of_the_session(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(**FAST)
    receiver = LogoutReceiver().start()
    quiet = LogoutReceiver().start()
    try:
        listening = register_client(server, backchannel_logout_uri=receiver.uri)
        unaware = register_client(server, name="No back-channel")
        unused = register_client(server, name="Not used", backchannel_logout_uri=quiet.uri)
        browser = signed_in_browser(server, smtp, "leaving@example.com")
        other = signed_in_browser(server, smtp, "staying@example.com")
        id_claims = _tokens_for(server, browser, listening.client_id, listening.secret)
        _tokens_for(server, browser, unaware.client_id, unaware.secret)
        _tokens_for(server, other, listening.client_id, listening.secret)

        assert browser.post("/signout", {}).status_code == 303

        [token] = receiver.wait_for_tokens(1)
        claims = verify_logout_token(server, token, client_id=listening.client_id)
        assert claims["sid"] == id_claims["sid"]
        assert claims["sub"] == id_claims["sub"]
        assert claims["exp"] - claims["iat"] <= 300
        assert receiver.attempts[0]["_content_type"].startswith("application/x-www-form-urlencoded")
        _settled(server)
        delivered = _audit(server, "oidc.backchannel_logout.delivered")
        assert [entry["detail"]["client_id"] for entry in delivered] == [listening.client_id]
        assert delivered[0]["detail"]["session_ended"] == "sign_out"
        assert delivered[0]["session_id"] == id_claims["sid"]
    finally:
        receiver.stop()
        quiet.stop()
    assert quiet.attempts == []  # no grant from that session: nothing to tell
    assert len(receiver.attempts) == 1  # the other person's session goes on
    assert unused.client_id not in {row["client_id"] for row in _deliveries(server)}


def test_a_client_that_was_down_receives_the_same_token_when_it_comes_back(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(**FAST)
    receiver = LogoutReceiver(failures=2, status=503).start()
    try:
        registered = register_client(server, backchannel_logout_uri=receiver.uri)
        browser = signed_in_browser(server, smtp, "retry@example.com")
        id_claims = _tokens_for(server, browser, registered.client_id, registered.secret)
        browser.post("/signout", {})

        [token] = receiver.wait_for_tokens(1)
        claims = verify_logout_token(server, token, client_id=registered.client_id)
        assert claims["sid"] == id_claims["sid"]
        jtis = {
            verify_logout_token(server, attempt["logout_token"], client_id=registered.client_id)[
                "jti"
            ]
            for attempt in receiver.attempts
        }
        assert jtis == {claims["jti"]}  # every retry names the same logout
    finally:
        receiver.stop()
    assert len(receiver.attempts) == 3
    [row] = _settled(server)
    assert (row["status"], row["attempts"]) == ("delivered", 3)


def test_delivery_gives_up_after_the_last_attempt_and_never_follows_a_redirect(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(**FAST, backchannel_max_attempts=2)
    elsewhere = LogoutReceiver().start()
    receiver = LogoutReceiver(failures=99, status=307, location=elsewhere.uri).start()
    try:
        registered = register_client(server, backchannel_logout_uri=receiver.uri)
        browser = signed_in_browser(server, smtp, "unreachable@example.com")
        _tokens_for(server, browser, registered.client_id, registered.secret)
        browser.post("/signout", {})
        receiver.wait_for_attempts(2)
        [row] = _settled(server)
    finally:
        receiver.stop()
        elsewhere.stop()
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert elsewhere.attempts == []
    [failed] = _audit(server, "oidc.backchannel_logout.failed")
    assert failed["detail"]["reason"] == "gave_up"
    status = run_sekisho(server.settings.database_url, "mail", "status")
    assert "logout_failed\t1\n" in status.stdout
    assert "logout_pending\t0\n" in status.stdout


def test_revoking_other_sessions_and_disabling_the_account_send_logouts(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(**FAST)
    receiver = LogoutReceiver().start()
    try:
        registered = register_client(server, backchannel_logout_uri=receiver.uri)
        here = signed_in_browser(server, smtp, "many@example.com")
        there = FormBrowser(server.url)
        sign_in_by_code(there, smtp, "many@example.com")
        there_sid = _tokens_for(server, there, registered.client_id, registered.secret)["sid"]
        here_sid = _tokens_for(server, here, registered.client_id, registered.secret)["sid"]

        assert here.post("/account/sessions/revoke-others", {}).status_code == 303
        [first] = receiver.wait_for_tokens(1)
        assert verify_logout_token(server, first, client_id=registered.client_id)["sid"] == (
            there_sid
        )

        disabled = run_sekisho(server.settings.database_url, "users", "disable", "many@example.com")
        assert disabled.returncode == 0, disabled.stderr
        tokens = receiver.wait_for_tokens(2)
    finally:
        receiver.stop()
    assert verify_logout_token(server, tokens[1], client_id=registered.client_id)["sid"] == (
        here_sid
    )
    assert [row["reason"] for row in _deliveries(server)] == ["revoked_others", "account_disabled"]


def test_an_idle_timeout_and_an_unnoticed_expiry_send_logouts(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(**FAST)
    receiver = LogoutReceiver().start()
    try:
        registered = register_client(server, backchannel_logout_uri=receiver.uri)
        idle = signed_in_browser(server, smtp, "idle@example.com")
        gone = signed_in_browser(server, smtp, "gone@example.com")
        idle_sid = _tokens_for(server, idle, registered.client_id, registered.secret)["sid"]
        gone_sid = _tokens_for(server, gone, registered.client_id, registered.secret)["sid"]
        long_ago = datetime.now(UTC) - timedelta(days=31)  # past the AAL1 limits
        with server.database.engine.begin() as connection:
            connection.execute(
                text("UPDATE sessions SET last_seen_at = :t WHERE id = :id"),
                {"t": long_ago, "id": idle_sid},
            )
            connection.execute(
                text("UPDATE sessions SET expires_at = :t WHERE id = :id"),
                {"t": long_ago, "id": gone_sid},
            )

        assert idle.http.get("/account").status_code == 303  # the timeout is noticed
        [first] = receiver.wait_for_tokens(1)
        assert verify_logout_token(server, first, client_id=registered.client_id)["sid"] == (
            idle_sid
        )
        purged = run_sekisho(server.settings.database_url, "db", "purge")
        assert purged.returncode == 0, purged.stderr
        tokens = receiver.wait_for_tokens(2)
    finally:
        receiver.stop()
    assert verify_logout_token(server, tokens[1], client_id=registered.client_id)["sid"] == (
        gone_sid
    )
    assert [row["reason"] for row in _deliveries(server)] == ["timeout", "expired"]


def test_the_mail_worker_process_delivers_logout_tokens(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    server = make_server(mail_worker=False)
    receiver = LogoutReceiver(failures=1).start()
    environment = {
        "database_url": server.settings.database_url,
        "SEKISHO_PUBLIC_ORIGIN": server.settings.public_origin,
        "SEKISHO_MAIL_BACKEND": "smtp",
        "SEKISHO_SMTP_HOST": "127.0.0.1",
        "SEKISHO_SMTP_PORT": str(smtp.port),
        "SEKISHO_SMTP_SECURITY": "none",
        "SEKISHO_MAIL_POLL_SECONDS": "0.05",
        "SEKISHO_BACKCHANNEL_POLL_SECONDS": "0.05",
        "SEKISHO_BACKCHANNEL_RETRY_BASE_SECONDS": "0.2",
    }
    try:
        with running(tmp_path, "mail", "worker", ready="Ctrl-C", **environment):
            registered = register_client(server, backchannel_logout_uri=receiver.uri)
            browser = signed_in_browser(server, smtp, "worker@example.com")
            sid = _tokens_for(server, browser, registered.client_id, registered.secret)["sid"]
            browser.post("/signout", {})
            [token] = receiver.wait_for_tokens(1)
    finally:
        receiver.stop()
    assert verify_logout_token(server, token, client_id=registered.client_id)["sid"] == sid
    assert len(receiver.attempts) == 2


def test_the_logout_is_queued_with_the_session_end_or_not_at_all(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server, backchannel_logout_uri="https://rp.example/bc")
    browser = signed_in_browser(server, smtp, "atomic@example.com")
    sid = _tokens_for(server, browser, registered.client_id, registered.secret)["sid"]
    database = server.database
    try:
        with contextlib.suppress(RuntimeError), database.transaction() as repos:
            assert repos.sessions.revoke(sid, reason="sign_out", now=datetime.now(UTC))
            raise RuntimeError("the transaction fails after the session ended")
        assert _deliveries(server) == []
        assert browser.signed_in()
        with database.transaction() as repos:
            assert repos.sessions.revoke(sid, reason="sign_out", now=datetime.now(UTC))
            assert not repos.sessions.revoke(sid, reason="sign_out", now=datetime.now(UTC))
    finally:
        database.dispose()
    assert [(row["session_id"], row["reason"]) for row in _deliveries(server)] == [
        (sid, "sign_out")
    ]
    assert not browser.signed_in()


def test_a_server_stopped_mid_post_gives_the_delivery_back(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    # A relying party that takes the connection and never answers: the worker's post is
    # in flight when the server stops (a rolling restart). Kept, the claim's lease would
    # hold the logout back from the next instance.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(30)
        server = make_server(**FAST, backchannel_timeout_seconds=60)
        port = silent.getsockname()[1]
        registered = register_client(
            server, backchannel_logout_uri=f"http://127.0.0.1:{port}/logout"
        )
        browser = signed_in_browser(server, smtp, "restart@example.com")
        _tokens_for(server, browser, registered.client_id, registered.secret)
        assert browser.post("/signout", {}).status_code == 303
        connection, _address = silent.accept()
        with connection:
            server.stop()
    with server.database.engine.connect() as database:
        row = database.execute(
            text("SELECT status, locked_until, attempts FROM oidc_logout_deliveries")
        ).one()
    assert tuple(row) == ("pending", None, 0)
