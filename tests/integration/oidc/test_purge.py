"""``sekisho db purge`` removes the OpenID Connect artefacts nobody can use any more
(store/maintenance.py) and keeps those of live sessions."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import text

from tests.support.cli import run_sekisho
from tests.support.oidc import (
    OFFLINE_SCOPES,
    REDIRECT_URI,
    authorize_url,
    challenge,
    code_for,
    exchange,
    refresh_with,
    register_client,
    signed_in_browser,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _count(server: LiveServer, table: str) -> int:
    with server.database.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_purge_removes_spent_oidc_rows_and_keeps_a_live_sessions_grant(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server)
    ended = signed_in_browser(server, smtp, "gone@example.com")
    live = signed_in_browser(server, smtp, "here@example.com")
    for browser in (ended, live):
        answer = exchange(server, registered, code_for(browser, registered.client_id))
        assert answer.status_code == 200, answer.text
    ended.post("/signout", {})
    with server.client() as anonymous:
        waiting = anonymous.get(authorize_url(registered.client_id))
        assert waiting.status_code == 303, waiting.text
    assert (_count(server, "oidc_grants"), _count(server, "oidc_pending_requests")) == (2, 1)
    with server.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE sessions SET revoked_at = :old WHERE revoked_at IS NOT NULL"),
            {"old": LONG_AGO},
        )
        for table in ("oidc_pending_requests", "oidc_codes"):
            connection.execute(text(f"UPDATE {table} SET expires_at = :old"), {"old": LONG_AGO})

    result = run_sekisho(server.settings.database_url, "db", "purge", "--older-than-days", "30")

    assert result.returncode == 0, result.stderr
    counts = dict(line.split("\t") for line in result.stdout.splitlines())
    assert counts["sessions"] == "1"
    assert counts["oidc_pending_requests"] == "1"
    assert counts["oidc_codes"] == "2"
    assert (counts["oidc_grants"], counts["oidc_access_tokens"]) == ("1", "1")
    assert _count(server, "oidc_grants") == 1
    assert _count(server, "oidc_access_tokens") == 1


def test_purge_removes_refresh_tokens_of_ended_families_and_keeps_live_ones(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """A spent token of a live family stays: it is what recognises its reuse."""
    registered = register_client(server, scopes=OFFLINE_SCOPES)
    tokens = {}
    for email in ("ended@example.com", "live@example.com", "lapsed@example.com"):
        browser = signed_in_browser(server, smtp, email)
        try:
            code = code_for(browser, registered.client_id, scope="openid offline_access")
            tokens[email] = exchange(server, registered, code).json()
            if email == "ended@example.com":
                refresh_with(server, registered, tokens[email]["refresh_token"])
                browser.post("/signout", {})
        finally:
            browser.close()
    live = refresh_with(server, registered, tokens["live@example.com"]["refresh_token"])
    assert live.status_code == 200, live.text
    assert _count(server, "oidc_refresh_tokens") == 5
    with server.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE sessions SET revoked_at = :old WHERE revoked_at IS NOT NULL"),
            {"old": LONG_AGO},
        )
        connection.execute(
            text(
                "UPDATE oidc_refresh_tokens SET expires_at = :old WHERE grant_id IN"
                " (SELECT g.id FROM oidc_grants g JOIN users u ON u.id = g.user_id"
                " WHERE u.email = 'lapsed@example.com')"
            ),
            {"old": LONG_AGO},
        )

    result = run_sekisho(server.settings.database_url, "db", "purge", "--older-than-days", "30")

    assert result.returncode == 0, result.stderr
    counts = dict(line.split("\t") for line in result.stdout.splitlines())
    assert counts["oidc_refresh_tokens"] == "3"  # two of the ended family, one lapsed
    assert _count(server, "oidc_refresh_tokens") == 2  # the live family: spent and current
    reused = refresh_with(server, registered, tokens["live@example.com"]["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"
    assert refresh_with(server, registered, live.json()["refresh_token"]).status_code == 400


def test_purge_removes_expired_pushed_requests_and_assertion_ids(server: LiveServer) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    registered = register_client(
        server, auth_method="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]}
    )
    form = {
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "code_challenge": challenge(),
        "code_challenge_method": "S256",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    now = int(time.time())
    with server.client() as http:
        for jti in ("old", "new"):
            assertion = jwt.encode(
                {"alg": "ES256", "kid": key.kid},
                {
                    "iss": registered.client_id,
                    "sub": registered.client_id,
                    "aud": server.settings.public_origin,
                    "exp": now + 60,
                    "jti": jti,
                },
                key,
            )
            assert (
                http.post("/par", data={**form, "client_assertion": assertion}).status_code == 201
            )
    with server.database.engine.begin() as connection:
        for table in ("oidc_pushed_requests", "oidc_client_assertions"):
            first = connection.execute(text(f"SELECT min(digest) FROM {table}")).scalar_one()
            connection.execute(
                text(f"UPDATE {table} SET expires_at = :old WHERE digest = :d"),
                {"old": LONG_AGO, "d": first},
            )

    result = run_sekisho(server.settings.database_url, "db", "purge", "--older-than-days", "30")

    assert result.returncode == 0, result.stderr
    counts = dict(line.split("\t") for line in result.stdout.splitlines())
    assert counts["oidc_pushed_requests"] == counts["oidc_client_assertions"] == "1"
    assert _count(server, "oidc_pushed_requests") == _count(server, "oidc_client_assertions") == 1
