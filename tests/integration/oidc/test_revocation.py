"""Token revocation (RFC 7009) over real HTTP: a client revokes its own refresh token
(the whole grant ends) or access token (deny-listed by jti: UserInfo and introspection
refuse it); unknown tokens answer 200; another client's token is refused and stays
valid; every revocation is audited."""

from __future__ import annotations

import json
from typing import Any

from authlib.integrations.requests_client import OAuth2Session
from sqlalchemy import text

from tests.support.oidc import (
    OFFLINE_SCOPES,
    Registered,
    code_for,
    exchange,
    post_as,
    refresh_with,
    register_client,
    signed_in_browser,
    userinfo_status,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

OFFLINE = "openid email offline_access"


def _audit(server: LiveServer, event: str) -> list[dict[str, Any]]:
    with server.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT user_id, amr, detail FROM audit_events WHERE event = :e ORDER BY id"),
            {"e": event},
        ).mappings()
        return [{**row, "detail": json.loads(row["detail"])} for row in rows]


def _tokens(
    server: LiveServer, smtp: SmtpCapture, email: str, **client: Any
) -> tuple[Registered, dict[str, Any]]:
    registered = register_client(server, scopes=OFFLINE_SCOPES, **client)
    browser = signed_in_browser(server, smtp, email)
    try:
        code = code_for(browser, registered.client_id, scope=OFFLINE)
    finally:
        browser.close()
    answer = exchange(server, registered, code)
    assert answer.status_code == 200, answer.text
    return registered, answer.json()


def test_authlib_revokes_a_refresh_token_and_the_grant_ends(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered, tokens = _tokens(server, smtp, "ema@example.com")
    rp = OAuth2Session(client_id=registered.client_id, client_secret=registered.secret)

    revoked = rp.revoke_token(
        server.url + "/revoke", tokens["refresh_token"], token_type_hint="refresh_token"
    )

    assert revoked.status_code == 200
    assert revoked.headers["cache-control"] == "no-store"
    assert refresh_with(server, registered, tokens["refresh_token"]).json()["error"] == (
        "invalid_grant"
    )
    assert userinfo_status(server, tokens["access_token"]) == 401  # RFC 7009 §2.1
    events = _audit(server, "oidc.token.revoked")
    assert [event["detail"]["token_type"] for event in events] == ["refresh_token"]
    assert events[0]["amr"] == "email"
    assert events[0]["user_id"] is not None
    assert events[0]["detail"]["acr"] == "urn:sekisho:acr:aal1"
    # revoking again, or reusing it after revocation, changes nothing and answers 200
    assert rp.revoke_token(server.url + "/revoke", tokens["refresh_token"]).status_code == 200


def test_revoking_an_access_token_deny_lists_it_and_keeps_the_refresh_token(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered, tokens = _tokens(server, smtp, "iko@example.com")
    assert userinfo_status(server, tokens["access_token"]) == 200

    # no hint: the refresh tokens are searched first, then the access tokens (§2.1)
    revoked = post_as(server, registered, "/revoke", token=tokens["access_token"])

    assert revoked.status_code == 200
    assert userinfo_status(server, tokens["access_token"]) == 401
    introspected = post_as(server, registered, "/introspect", token=tokens["access_token"])
    assert introspected.json() == {"active": False}
    renewed = refresh_with(server, registered, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    assert userinfo_status(server, renewed.json()["access_token"]) == 200
    events = _audit(server, "oidc.token.revoked")
    assert [event["detail"]["token_type"] for event in events] == ["access_token"]


def test_another_clients_token_is_refused_and_stays_valid(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered, tokens = _tokens(server, smtp, "nagi@example.com")
    other = register_client(server, name="Other")
    for token, hint in (
        (tokens["refresh_token"], "refresh_token"),
        (tokens["access_token"], "access_token"),
    ):
        answer = post_as(server, other, "/revoke", token=token, token_type_hint=hint)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "unauthorized_client"
    assert userinfo_status(server, tokens["access_token"]) == 200
    assert refresh_with(server, registered, tokens["refresh_token"]).status_code == 200
    refused = _audit(server, "oidc.token.revocation_refused")
    assert [event["detail"]["client_id"] for event in refused] == [other.client_id] * 2
    assert _audit(server, "oidc.token.revoked") == []


def test_unknown_tokens_answer_200_and_bad_requests_are_refused(server: LiveServer) -> None:
    registered = register_client(server)
    public = register_client(
        server,
        auth_method="none",
        application_type="native",
        redirect_uris=("http://127.0.0.1/callback",),
    )
    for token in ("made-up", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "x" * 4000):
        assert post_as(server, registered, "/revoke", token=token).status_code == 200
    assert post_as(server, public, "/revoke", token="made-up").status_code == 200
    hinted = post_as(server, registered, "/revoke", token="made-up", token_type_hint="other")
    assert hinted.status_code == 200  # unknown hints are ignored (§2.1)
    missing = post_as(server, registered, "/revoke")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    with server.client() as http:
        wrong = http.post(
            "/revoke", data={"token": "made-up"}, auth=(registered.client_id, "not-the-secret")
        )
        anonymous = http.post("/revoke", data={"token": "made-up"})
        as_json = http.post("/revoke", json={"token": "made-up"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert wrong.headers["www-authenticate"].startswith("Basic")
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")
    assert as_json.json()["error"] == "invalid_request"
