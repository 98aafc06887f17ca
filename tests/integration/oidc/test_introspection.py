"""Token introspection (RFC 7662) over real HTTP: confidential clients only; an access
token's claims, while it, its grant, its session and the account stand, only to the
client it was issued to and the resource servers registered to introspect that client's
tokens; a refresh token only to the client it was issued to; ``{"active": false}`` and
nothing else otherwise."""

from __future__ import annotations

from typing import Any

from tests.support.oidc import (
    OFFLINE_SCOPES,
    Registered,
    code_for,
    exchange,
    post_as,
    refresh_with,
    register_client,
    signed_in_browser,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

OFFLINE = "openid email offline_access"
INACTIVE = {"active": False}


def _introspect(server: LiveServer, caller: Registered, token: str, **hint: str) -> Any:
    answer = post_as(server, caller, "/introspect", token=token, **hint)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()


def test_active_tokens_until_the_session_ends(server: LiveServer, smtp: SmtpCapture) -> None:
    registered = register_client(server, scopes=OFFLINE_SCOPES)
    resource_server = register_client(
        server, name="Brokerage API", introspects=(registered.client_id,)
    )
    browser = signed_in_browser(server, smtp, "tomo@example.com")
    try:
        code = code_for(browser, registered.client_id, scope=OFFLINE)
        tokens = exchange(server, registered, code).json()

        access = _introspect(server, resource_server, tokens["access_token"])
        assert access["active"] is True
        assert access["token_type"] == "Bearer"
        assert access["client_id"] == registered.client_id
        assert access["scope"] == OFFLINE
        assert access["iss"] == server.settings.public_origin
        assert access["acr"] == "urn:sekisho:acr:aal1"
        assert access["amr"] == ["email"]
        assert {"sub", "exp", "iat", "jti", "auth_time", "aud"} <= set(access)

        own = _introspect(
            server, registered, tokens["refresh_token"], token_type_hint="refresh_token"
        )
        assert own["active"] is True
        assert (own["client_id"], own["sub"], own["scope"]) == (
            registered.client_id,
            access["sub"],
            OFFLINE,
        )
        assert own["exp"] > access["exp"]
        # a refresh token is only its own client's business
        assert _introspect(server, resource_server, tokens["refresh_token"]) == INACTIVE

        assert browser.post("/signout", {}).status_code == 303
    finally:
        browser.close()
    assert _introspect(server, resource_server, tokens["access_token"]) == INACTIVE
    assert _introspect(server, registered, tokens["refresh_token"]) == INACTIVE


def test_spent_and_revoked_tokens_are_inactive(server: LiveServer, smtp: SmtpCapture) -> None:
    registered = register_client(server, scopes=OFFLINE_SCOPES)
    browser = signed_in_browser(server, smtp, "saki@example.com")
    try:
        code = code_for(browser, registered.client_id, scope=OFFLINE)
    finally:
        browser.close()
    first = exchange(server, registered, code).json()
    second = refresh_with(server, registered, first["refresh_token"]).json()

    assert _introspect(server, registered, first["refresh_token"]) == INACTIVE  # rotated
    assert _introspect(server, registered, second["refresh_token"])["active"] is True
    assert post_as(server, registered, "/revoke", token=second["refresh_token"]).status_code == 200
    assert _introspect(server, registered, second["refresh_token"]) == INACTIVE
    assert _introspect(server, registered, second["access_token"]) == INACTIVE


def test_only_authenticated_confidential_clients_may_introspect(server: LiveServer) -> None:
    confidential = register_client(server)
    public = register_client(
        server,
        auth_method="none",
        application_type="native",
        redirect_uris=("http://127.0.0.1/callback",),
    )
    assert _introspect(server, confidential, "made-up") == INACTIVE
    assert _introspect(server, confidential, "eyJhbGciOiJFUzI1NiJ9.e30.c2ln") == INACTIVE
    refused = post_as(server, public, "/introspect", token="made-up")
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    with server.client() as http:
        anonymous = http.post("/introspect", data={"token": "made-up"})
        wrong = http.post(
            "/introspect", data={"token": "x"}, auth=(confidential.client_id, "not-the-secret")
        )
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert wrong.headers["www-authenticate"].startswith("Basic")
    missing = post_as(server, confidential, "/introspect")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")


def test_a_client_learns_only_about_tokens_it_may(server: LiveServer, smtp: SmtpCapture) -> None:
    """RFC 7662 §2.2 and §4: another client's valid token is answered exactly as an
    unknown one (no oracle), and the probe is audited."""
    app = register_client(server, scopes=OFFLINE_SCOPES)
    other_app = register_client(server, name="Other app")
    stranger = register_client(server, name="Stranger API")
    serves_other = register_client(server, name="Other API", introspects=(other_app.client_id,))
    serves_app = register_client(server, name="Brokerage API", introspects=(app.client_id,))
    browser = signed_in_browser(server, smtp, "mio@example.com")
    try:
        code = code_for(browser, app.client_id, scope=OFFLINE)
    finally:
        browser.close()
    tokens = exchange(server, app, code).json()
    access = tokens["access_token"]

    assert _introspect(server, app, access)["active"] is True
    assert _introspect(server, serves_app, access)["active"] is True
    for caller in (other_app, stranger, serves_other):
        assert _introspect(server, caller, access) == INACTIVE
        assert _introspect(server, caller, tokens["refresh_token"]) == INACTIVE
    # a resource server never learns about a refresh token, even of a client it serves
    assert _introspect(server, serves_app, tokens["refresh_token"]) == INACTIVE

    refused = server.audited("oidc.introspection.refused")
    assert len(refused) == 7
    assert refused[0] == {
        "client_id": other_app.client_id,
        "reason": "not_entitled",
        "token_type": "access_token",
        "token_client_id": app.client_id,
    }
    assert {event["token_type"] for event in refused} == {
        "access_token",
        "refresh_token",
    }
