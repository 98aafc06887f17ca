"""Refresh tokens over real HTTP (RFC 6749 §6, OIDC Core §12, RFC 9700 §4.14.2;
SECURITY.md case 38): issued for ``offline_access`` to a client allowed it, rotated on
every use, a reused one revokes the whole family, concurrent refreshes give at most one
success, bound to their client, ended with the session, the account and the client."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.cli import run_sekisho
from tests.support.oidc import (
    OFFLINE_SCOPES,
    VERIFIER,
    authorize_url,
    code_for,
    exchange,
    post_as,
    refresh_with,
    register_client,
    rp_client,
    signed_in_browser,
    userinfo_status,
    verify_id_token,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

OFFLINE = "openid email offline_access"
REQUEST_TAG = re.compile(r'name="request" value="([^"]+)"')
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _audit(server: LiveServer, event: str) -> list[dict[str, Any]]:
    with server.database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT user_id, session_id, amr, detail FROM audit_events"
                " WHERE event = :e ORDER BY id"
            ),
            {"e": event},
        ).mappings()
        return [{**row, "detail": json.loads(row["detail"])} for row in rows]


def _first_tokens(
    server: LiveServer, smtp: SmtpCapture, email: str, *, scope: str = OFFLINE
) -> tuple[Any, dict[str, Any]]:
    registered = register_client(server, scopes=OFFLINE_SCOPES)
    browser = signed_in_browser(server, smtp, email)
    try:
        code = code_for(browser, registered.client_id, scope=scope, nonce="n-0")
    finally:
        browser.close()
    answer = exchange(server, registered, code)
    assert answer.status_code == 200, answer.text
    return registered, answer.json()


def test_authlib_refreshes_and_the_id_token_keeps_the_original_authentication(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server, scopes=OFFLINE_SCOPES)
    rp = rp_client(server, registered, scope=OFFLINE)
    browser = signed_in_browser(server, smtp, "rin@example.com")
    try:
        code = code_for(browser, registered.client_id, scope=OFFLINE, nonce="n-1")
    finally:
        browser.close()
    first = rp.fetch_token(server.url + "/token", code=code, code_verifier=VERIFIER)
    assert isinstance(first["refresh_token"], str)
    assert len(first["refresh_token"]) >= 43
    original = verify_id_token(server, first["id_token"], client_id=registered.client_id)

    second = rp.refresh_token(server.url + "/token", refresh_token=first["refresh_token"])

    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == OFFLINE
    refreshed = verify_id_token(server, second["id_token"], client_id=registered.client_id)
    for claim in ("sub", "aud", "azp", "auth_time", "acr", "amr", "sid"):
        assert refreshed[claim] == original[claim], claim
    assert original["nonce"] == "n-1"
    assert "nonce" not in refreshed  # OIDC Core §12.2
    assert userinfo_status(server, second["access_token"]) == 200
    with server.database.engine.connect() as connection:
        stored = connection.execute(text("SELECT digest FROM oidc_refresh_tokens")).scalars()
        digests = list(stored)
    assert len(digests) == 2
    assert first["refresh_token"] not in digests
    assert second["refresh_token"] not in digests
    refreshed_events = _audit(server, "oidc.token.refreshed")
    assert len(refreshed_events) == 1
    assert refreshed_events[0]["user_id"] == original["sub"]
    assert refreshed_events[0]["amr"] == "email"
    assert refreshed_events[0]["detail"]["acr"] == original["acr"]
    assert refreshed_events[0]["detail"]["client_id"] == registered.client_id


def test_a_reused_refresh_token_revokes_the_whole_family(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered, first = _first_tokens(server, smtp, "kai@example.com")
    second = refresh_with(server, registered, first["refresh_token"])
    assert second.status_code == 200, second.text
    newest = second.json()

    reused = refresh_with(server, registered, first["refresh_token"])

    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert reused.headers["cache-control"] == "no-store"
    # the family is over: the newest refresh token and every access token with it
    after = refresh_with(server, registered, newest["refresh_token"])
    assert after.json()["error"] == "invalid_grant"
    assert userinfo_status(server, newest["access_token"]) == 401
    assert userinfo_status(server, first["access_token"]) == 401
    events = _audit(server, "oidc.refresh.reused")
    assert len(events) == 1
    assert events[0]["amr"] == "email"
    assert events[0]["user_id"] is not None
    assert events[0]["detail"]["client_id"] == registered.client_id
    assert events[0]["detail"]["acr"] == "urn:sekisho:acr:aal1"


def test_concurrent_refreshes_give_at_most_one_success(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered, first = _first_tokens(server, smtp, "mei@example.com")
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(lambda _: refresh_with(server, registered, first["refresh_token"]), range(10))
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [400] * 9, [answer.text for answer in answers]
    assert {answer.json()["error"] for answer in answers if answer.status_code == 400} == {
        "invalid_grant"
    }
    # the losers presented a spent token: reuse, so even the winner's family ended
    winner = next(answer for answer in answers if answer.status_code == 200).json()
    assert refresh_with(server, registered, winner["refresh_token"]).status_code == 400
    assert userinfo_status(server, winner["access_token"]) == 401
    assert len(_audit(server, "oidc.token.refreshed")) == 1


def test_a_refresh_token_is_bound_to_its_client(server: LiveServer, smtp: SmtpCapture) -> None:
    registered, first = _first_tokens(server, smtp, "hal@example.com")
    other = register_client(server, scopes=OFFLINE_SCOPES, name="Other")

    stolen = refresh_with(server, other, first["refresh_token"])

    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    refusal = _audit(server, "oidc.token.refused")[-1]["detail"]
    assert (refusal["reason"], refusal["client_id"]) == ("other_client", other.client_id)
    # the owner's token was neither spent nor revoked by the attempt
    assert refresh_with(server, registered, first["refresh_token"]).status_code == 200


def test_scope_may_narrow_but_never_widen(server: LiveServer, smtp: SmtpCapture) -> None:
    registered, first = _first_tokens(server, smtp, "yu@example.com")

    for refused in (OFFLINE + " profile", "email", ""):
        wider = refresh_with(server, registered, first["refresh_token"], scope=refused)
        assert wider.status_code == 400, refused
        assert wider.json()["error"] == "invalid_scope"
    # refused before anything was written: the token is still unspent
    narrower = refresh_with(server, registered, first["refresh_token"], scope="openid")

    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["scope"] == "openid"
    with server.client() as http:
        info = http.get(
            "/userinfo",
            headers={"Authorization": f"Bearer {narrower.json()['access_token']}"},
        ).json()
    assert set(info) == {"sub"}
    # the family keeps the grant's scope
    again = refresh_with(server, registered, narrower.json()["refresh_token"])
    assert again.json()["scope"] == OFFLINE


def test_no_refresh_token_without_offline_access(server: LiveServer, smtp: SmtpCapture) -> None:
    not_allowed = register_client(server)  # openid email profile only
    browser = signed_in_browser(server, smtp, "sou@example.com")
    try:
        refused = browser.http.get(
            authorize_url(not_allowed.client_id, scope="openid offline_access")
        )
        allowed = register_client(server, scopes=OFFLINE_SCOPES)
        plain = code_for(browser, allowed.client_id, scope="openid email")
    finally:
        browser.close()
    assert refused.status_code == 303
    assert "error=invalid_scope" in refused.headers["location"]
    tokens = exchange(server, allowed, plain).json()
    assert "refresh_token" not in tokens
    made_up = refresh_with(server, allowed, "not-a-token")
    assert made_up.status_code == 400
    assert made_up.json()["error"] == "invalid_grant"
    missing = refresh_with(server, allowed, "")
    assert missing.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "ending",
    ["sign_out", "idle_timeout", "tier_idle_timeout", "disabled", "status_only", "expired"],
)
def test_refresh_is_refused_once_the_session_or_account_ends(
    server: LiveServer, smtp: SmtpCapture, ending: str
) -> None:
    email = f"{ending.replace('_', '')}@example.com"
    registered = register_client(server, scopes=OFFLINE_SCOPES)
    browser = signed_in_browser(server, smtp, email)
    try:
        code = code_for(browser, registered.client_id, scope=OFFLINE)
        tokens = exchange(server, registered, code).json()
        if ending == "sign_out":
            assert browser.post("/signout", {}).status_code == 303
    finally:
        browser.close()
    url = server.settings.database_url
    if ending == "disabled":
        assert run_sekisho(url, "users", "disable", email).returncode == 0
    elif ending == "status_only":  # the account's status alone, its session untouched
        with server.database.engine.begin() as connection:
            connection.execute(text("UPDATE users SET status = 'disabled'"))
    elif ending == "tier_idle_timeout":  # idle 5 minutes, past a tier's 60 s, within AAL1's
        with server.database.engine.begin() as connection:
            connection.execute(
                text("UPDATE sessions SET idle_seconds = 60, last_seen_at = :seen"),
                {"seen": datetime.now(UTC) - timedelta(minutes=5)},
            )
    elif ending == "idle_timeout":
        with server.database.engine.begin() as connection:
            connection.execute(text("UPDATE sessions SET last_seen_at = :old"), {"old": LONG_AGO})
    elif ending == "expired":
        with server.database.engine.begin() as connection:
            connection.execute(
                text("UPDATE oidc_refresh_tokens SET expires_at = :old"), {"old": LONG_AGO}
            )

    answer = refresh_with(server, registered, tokens["refresh_token"])

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    reason = _audit(server, "oidc.token.refused")[-1]["detail"]["reason"]
    expected = {
        "sign_out": "session_ended",
        "idle_timeout": "session_ended",
        "tier_idle_timeout": "session_ended",
        "disabled": "session_ended",  # disabling ends the account's sessions
        "status_only": "account_inactive",
        "expired": "expired",
    }
    assert reason == expected[ending]


def test_a_removed_clients_refresh_tokens_end(server: LiveServer, smtp: SmtpCapture) -> None:
    registered, first = _first_tokens(server, smtp, "gin@example.com")
    url = server.settings.database_url
    assert run_sekisho(url, "clients", "remove", registered.client_id).returncode == 0

    answer = refresh_with(server, registered, first["refresh_token"])

    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    with server.database.engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM oidc_refresh_tokens")).scalar_one()
    assert left == 0


def test_the_refresh_token_lives_no_longer_than_its_session(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    _first_tokens(server, smtp, "ao@example.com")
    with server.database.engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT r.expires_at AS token_end, s.expires_at AS session_end"
                " FROM oidc_refresh_tokens r JOIN oidc_grants g ON g.id = r.grant_id"
                " JOIN sessions s ON s.id = g.session_id"
            )
        ).one()
    assert row.token_end == row.session_end


def test_a_third_party_client_asks_consent_for_offline_access(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """OIDC Core §11: offline access is consented to; the page says it in both languages."""
    registered = register_client(server, scopes=OFFLINE_SCOPES, first_party=False)
    browser = signed_in_browser(server, smtp, "nori@example.com")
    try:
        assert browser.http.get(authorize_url(registered.client_id)).status_code == 303
        english = browser.http.get("/authorize/resume")
        tag = REQUEST_TAG.search(english.text)
        assert tag is not None
        browser.post("/authorize/consent", {"request": tag.group(1), "decision": "allow"})
        asked = browser.http.get(authorize_url(registered.client_id, scope=OFFLINE))
        assert asked.headers["location"] == "/authorize/resume"  # a new scope: asked again
        japanese = browser.http.get("/authorize/resume", headers={"Accept-Language": "ja"})
        english_offline = browser.http.get("/authorize/resume")
    finally:
        browser.close()
    assert "Stay connected while you are signed in to Sekisho" not in english.text
    assert "Stay connected while you are signed in to Sekisho" in english_offline.text
    assert "Sekisho にサインインしている間、接続を維持する" in japanese.text


def test_a_public_client_refreshes_with_rotation(server: LiveServer, smtp: SmtpCapture) -> None:
    """RFC 9700 §4.14.2: a public client's refresh tokens are rotated (it has no secret)."""
    callback = "http://127.0.0.1:50123/callback"
    public = register_client(
        server,
        auth_method="none",
        application_type="native",
        redirect_uris=("http://127.0.0.1/callback",),
        scopes=OFFLINE_SCOPES,
    )
    browser = signed_in_browser(server, smtp, "tae@example.com")
    try:
        code = code_for(browser, public.client_id, scope=OFFLINE, redirect_uri=callback)
    finally:
        browser.close()
    first = post_as(
        server,
        public,
        "/token",
        grant_type="authorization_code",
        code=code,
        redirect_uri=callback,
        code_verifier=VERIFIER,
    ).json()
    second = refresh_with(server, public, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert refresh_with(server, public, first["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh_with(server, public, second.json()["refresh_token"]).status_code == 400


def test_a_replayed_code_ends_the_refresh_tokens_it_issued(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """SECURITY.md case 36 with refresh tokens: the replay revokes the grant, the family."""
    registered = register_client(server, scopes=OFFLINE_SCOPES)
    browser = signed_in_browser(server, smtp, "ren@example.com")
    try:
        code = code_for(browser, registered.client_id, scope=OFFLINE)
    finally:
        browser.close()
    first = exchange(server, registered, code).json()
    rotated = refresh_with(server, registered, first["refresh_token"]).json()

    assert exchange(server, registered, code).json()["error"] == "invalid_grant"

    answer = refresh_with(server, registered, rotated["refresh_token"])
    assert answer.json()["error"] == "invalid_grant"
    assert _audit(server, "oidc.token.refused")[-1]["detail"]["reason"] == "grant_revoked"
