"""The authorization code flow end to end over real HTTP and SMTP, driven by Authlib's
OAuth 2.0 client, every ID token checked with joserfc against the published JWKS
(OIDC Core §3.1; RFC 7636; RFC 9207; SECURITY.md cases 34-41 where they apply)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from authlib.common.security import generate_token
from sqlalchemy import text

from tests.support.browser import FormBrowser
from tests.support.oidc import (
    REDIRECT_URI,
    form_post_of,
    query_of,
    register_client,
    response_of,
    rp_client,
    sign_in_by_code,
    verify_id_token,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture


def _audit(server: LiveServer, event: str) -> list[dict[str, Any]]:
    with server.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT user_id, amr, detail FROM audit_events WHERE event = :e ORDER BY id"),
            {"e": event},
        ).mappings()
        return [{**row, "detail": json.loads(row["detail"])} for row in rows]


def test_discovery_names_the_configured_issuer(server: LiveServer) -> None:
    with server.client() as http:
        metadata = http.get(
            "/.well-known/openid-configuration", headers={"Host": "evil.example"}
        ).json()
        assert metadata["issuer"] == server.settings.public_origin
        assert metadata["authorization_endpoint"] == server.url + "/authorize"
        assert metadata["code_challenge_methods_supported"] == ["S256"]
        assert metadata["response_types_supported"] == ["code"]
        assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token"]
        assert metadata["revocation_endpoint"] == server.url + "/revoke"
        assert metadata["introspection_endpoint"] == server.url + "/introspect"
        assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]
        assert "offline_access" in metadata["scopes_supported"]
        assert metadata["authorization_response_iss_parameter_supported"] is True
        assert "phr" in metadata["acr_values_supported"]
        assert http.get("/.well-known/oauth-authorization-server").json() == metadata
        jwks = http.get("/.well-known/jwks.json").json()
    assert sorted((key["kty"], key.get("crv"), key["alg"]) for key in jwks["keys"]) == [
        ("EC", "P-256", "ES256"),
        ("RSA", None, "PS256"),
        ("RSA", None, "RS256"),
    ]
    assert metadata["id_token_signing_alg_values_supported"] == ["ES256", "RS256", "PS256"]
    assert all("d" not in key for key in jwks["keys"])


def test_email_code_sign_in_resumes_the_authorization(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    user_id = server.add_user("kana@example.com")
    registered = register_client(server)
    rp = rp_client(server, registered)
    verifier = generate_token(64)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        server.url + "/authorize", code_verifier=verifier, nonce=nonce, ui_locales="ja"
    )
    browser = FormBrowser(server.url)
    try:
        start = browser.http.get(url)
        assert start.status_code == 303
        assert start.headers["location"] == "/signin"
        assert browser.http.cookies.get("sekisho_lang") == "ja"
        assert "メールアドレス" in browser.http.get("/signin").text
        signed_in = sign_in_by_code(browser, smtp, "kana@example.com")
        assert signed_in.headers["location"] == "/authorize/resume"
        callback = response_of(browser.http.get("/authorize/resume"))
        assert "sekisho_authorization" not in browser.http.cookies
    finally:
        browser.close()
    answer = query_of(callback)
    assert callback.startswith(REDIRECT_URI + "?")
    assert answer["state"] == state
    assert answer["iss"] == server.settings.public_origin
    token = rp.fetch_token(
        server.url + "/token", authorization_response=callback, code_verifier=verifier
    )
    assert token["token_type"] == "Bearer"
    claims = verify_id_token(server, token["id_token"], client_id=registered.client_id)
    assert claims["sub"] == user_id
    assert claims["azp"] == registered.client_id
    assert claims["nonce"] == nonce
    assert claims["amr"] == ["email"]
    assert claims["acr"] == "urn:sekisho:acr:aal1"
    assert claims["email"] == "kana@example.com"
    assert claims["email_verified"] is True
    assert isinstance(claims["auth_time"], int)
    assert isinstance(claims["sid"], str)
    info = rp.get(server.url + "/userinfo")
    assert info.status_code == 200
    assert info.json() == {
        "sub": user_id,
        "email": "kana@example.com",
        "email_verified": True,
    }
    granted = _audit(server, "oidc.authorization.granted")
    issued = _audit(server, "oidc.token.issued")
    assert [event["user_id"] for event in granted + issued] == [user_id, user_id]
    assert issued[0]["detail"]["client_id"] == registered.client_id
    assert issued[0]["detail"]["acr"] == "urn:sekisho:acr:aal1"
    assert issued[0]["amr"] == "email"


def test_public_client_with_form_post_and_a_hostile_state(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("ren@example.com")
    registered = register_client(
        server,
        auth_method="none",
        application_type="native",
        redirect_uris=("http://127.0.0.1/callback",),
    )
    rp = rp_client(server, registered, redirect_uri="http://127.0.0.1:49152/callback")
    verifier = generate_token(64)
    hostile = '"><script>alert(1)</script>'
    url, _state = rp.create_authorization_url(
        server.url + "/authorize",
        code_verifier=verifier,
        state=hostile,
        response_mode="form_post",
        nonce="n-1",
    )
    browser = FormBrowser(server.url)
    try:
        assert browser.http.get(url).status_code == 303
        sign_in_by_code(browser, smtp, "ren@example.com")
        page = browser.http.get("/authorize/resume")
    finally:
        browser.close()
    assert "<script>alert" not in page.text
    policy = page.headers["content-security-policy"]
    assert "form-action http://127.0.0.1:49152;" in policy
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    action, fields = form_post_of(page)
    assert action == "http://127.0.0.1:49152/callback"
    assert fields["state"] == hostile
    assert fields["iss"] == server.settings.public_origin
    token = rp.fetch_token(
        server.url + "/token", code=fields["code"], code_verifier=verifier, state=hostile
    )
    claims = verify_id_token(server, token["id_token"], client_id=registered.client_id)
    assert claims["nonce"] == "n-1"
    with server.client() as http:
        other_page = http.get("/signin")
    assert "form-action 'self'" in other_page.headers["content-security-policy"]


def test_client_secret_post(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("sora@example.com")
    registered = register_client(server, auth_method="client_secret_post")
    rp = rp_client(server, registered, token_endpoint_auth_method="client_secret_post")
    verifier = generate_token(64)
    url, _state = rp.create_authorization_url(server.url + "/authorize", code_verifier=verifier)
    browser = FormBrowser(server.url)
    try:
        browser.http.get(url)
        sign_in_by_code(browser, smtp, "sora@example.com")
        callback = response_of(browser.http.get("/authorize/resume"))
        again = browser.http.get(url)  # signed in now: the code comes at once, by 303
    finally:
        browser.close()
    assert again.status_code == 303
    assert again.headers["location"].startswith(REDIRECT_URI + "?code=")
    token = rp.fetch_token(
        server.url + "/token", authorization_response=callback, code_verifier=verifier
    )
    verify_id_token(server, token["id_token"], client_id=registered.client_id)
    basic = rp_client(server, registered)  # the registered method only
    refused = basic.post(
        server.url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(again.headers["location"])["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(registered.client_id, registered.secret or ""),
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
