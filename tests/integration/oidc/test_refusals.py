"""What the provider refuses, over real HTTP (SECURITY.md cases 34-37, 39-41): untrusted
redirect URIs get a page and never a redirect; PKCE is required and S256 only; codes are
single use, bound to their client, redirect URI and verifier, and a replay revokes the
tokens the first redemption issued; prompt=none answers without pages."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.oidc import (
    REDIRECT_URI,
    Registered,
    authorize_url,
    code_for,
    exchange,
    query_of,
    register_client,
    signed_in_browser,
    userinfo_status,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT_URI + "/",
        "https://RP.example/callback",
        "https://rp.example/Callback",
        REDIRECT_URI + "?extra=1",
        "https://rp.example/callback/..;/",
        "https://rp.example@evil.example/callback",
        "https://evil.example/callback",
        "http://rp.example/callback",
        None,
    ],
)
def test_an_unregistered_redirect_uri_gets_a_page_never_a_redirect(
    server: LiveServer, redirect_uri: str | None
) -> None:
    registered = register_client(server)
    with server.client() as http:
        answer = http.get(authorize_url(registered.client_id, redirect_uri=redirect_uri))
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert 'data-error="redirect_uri_mismatch"' in answer.text


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://[::1/callback", "http://127.0.0.1:99999/callback", "http://127.0.0.1:x/callback"],
)
def test_a_malformed_loopback_uri_of_a_native_client_gets_a_page(
    server: LiveServer, redirect_uri: str
) -> None:
    """A native client's loopback URI matches with any port (RFC 8252 §7.3), so the
    candidate is parsed: one that does not parse is a mismatch, at /authorize and /par."""
    native = register_client(
        server,
        auth_method="none",
        application_type="native",
        redirect_uris=("http://127.0.0.1/callback",),
    )
    with server.client() as http:
        answer = http.get(authorize_url(native.client_id, redirect_uri=redirect_uri))
        pushed = http.post(
            "/par",
            data={**query_of(authorize_url(native.client_id)), "redirect_uri": redirect_uri},
        )
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert 'data-error="redirect_uri_mismatch"' in answer.text
    assert pushed.status_code == 400, pushed.text
    assert pushed.json()["error"] == "invalid_request"


def test_unknown_client_and_repeated_parameters_get_a_page(server: LiveServer) -> None:
    registered = register_client(server)
    with server.client() as http:
        unknown = http.get(authorize_url("nobody"))
        repeated = http.get(
            authorize_url(registered.client_id) + "&redirect_uri=https%3A%2F%2Fevil.example%2F"
        )
        japanese = http.get(authorize_url("nobody"), headers={"Accept-Language": "ja"})
    assert unknown.status_code == repeated.status_code == 400
    assert "location" not in unknown.headers
    assert "location" not in repeated.headers
    assert "登録されていません" in japanese.text
    with server.database.engine.connect() as connection:
        refused = connection.execute(
            text("SELECT detail FROM audit_events WHERE event = 'oidc.authorization.refused'")
        ).scalars()
        reasons = [json.loads(detail)["error"] for detail in refused]
    assert reasons == ["unknown_client", "repeated_parameter", "unknown_client"]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"scope": "email"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"request": "eyJ.x.y"}, "request_not_supported"),
    ],
)
def test_bad_requests_go_back_with_the_error_state_and_iss(
    server: LiveServer, overrides: dict[str, str | None], error: str
) -> None:
    registered = register_client(server)
    with server.client() as http:
        answer = http.get(authorize_url(registered.client_id, **overrides))
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    assert query_of(location) == {
        "error": error,
        "error_description": query_of(location)["error_description"],
        "state": "st-1",
        "iss": server.settings.public_origin,
    }


def test_prompt_none_answers_without_pages(server: LiveServer, smtp: SmtpCapture) -> None:
    first_party = register_client(server)
    third_party = register_client(server, first_party=False, name="Other app")
    with server.client() as http:
        answer = http.get(authorize_url(first_party.client_id, prompt="none"))
    assert answer.status_code == 303
    assert query_of(answer.headers["location"])["error"] == "login_required"
    assert query_of(answer.headers["location"])["iss"] == server.settings.public_origin
    browser = signed_in_browser(server, smtp, "mio@example.com")
    try:
        consent = browser.http.get(authorize_url(third_party.client_id, prompt="none"))
        quiet = browser.http.get(authorize_url(first_party.client_id, prompt="none"))
    finally:
        browser.close()
    assert query_of(consent.headers["location"])["error"] == "consent_required"
    assert "code" in query_of(quiet.headers["location"])


def test_a_code_is_bound_to_its_verifier_client_and_redirect_uri(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server)
    other = register_client(server)
    browser = signed_in_browser(server, smtp, "yui@example.com")
    try:
        refusals: list[tuple[Registered, str, dict[str, Any]]] = [
            (registered, code_for(browser, registered.client_id), {"code_verifier": "w" * 43}),
            (other, code_for(browser, registered.client_id), {}),
            (
                registered,
                code_for(browser, registered.client_id),
                {"redirect_uri": "https://x.example/"},
            ),
            (registered, "made-up-code", {}),
        ]
        for client, code, overrides in refusals:
            answer = exchange(server, client, code, **overrides)
            assert answer.status_code == 400, (overrides, answer.text)
            assert answer.json()["error"] == "invalid_grant"
            assert answer.headers["cache-control"] == "no-store"
            # the code is spent: even the right request fails now
            assert exchange(server, registered, code).json()["error"] == "invalid_grant"
        wrong_secret = exchange(
            server,
            Registered(registered.client_id, "not-the-secret"),
            code_for(browser, registered.client_id),
        )
        assert wrong_secret.status_code == 401
        assert wrong_secret.json()["error"] == "invalid_client"
        assert wrong_secret.headers["www-authenticate"].startswith("Basic")
    finally:
        browser.close()


def test_a_replayed_code_revokes_the_tokens_it_issued(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server)
    browser = signed_in_browser(server, smtp, "aoi@example.com")
    try:
        code = code_for(browser, registered.client_id)
    finally:
        browser.close()
    first = exchange(server, registered, code)
    assert first.status_code == 200, first.text
    access_token = first.json()["access_token"]
    assert userinfo_status(server, access_token) == 200
    replay = exchange(server, registered, code)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert userinfo_status(server, access_token) == 401


def test_unsupported_grants_and_bodies(server: LiveServer) -> None:
    registered = register_client(server)
    with server.client() as http:
        password = http.post(
            "/token",
            data={"grant_type": "password", "username": "a", "password": "b"},
            auth=(registered.client_id, registered.secret or ""),
        )
        as_json = http.post("/token", json={"grant_type": "authorization_code"})
        repeated = http.post(
            "/token",
            content="grant_type=authorization_code&code=a&code=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        no_token = http.get("/userinfo")
        bad_token = http.get("/userinfo", headers={"Authorization": "Bearer abc.def.ghi"})
    assert password.json()["error"] == "unsupported_grant_type"
    assert as_json.json()["error"] == "invalid_request"
    assert repeated.json()["error"] == "invalid_request"
    assert no_token.status_code == 401
    assert no_token.headers["www-authenticate"] == "Bearer"
    assert bad_token.status_code == 401
    assert 'error="invalid_token"' in bad_token.headers["www-authenticate"]


def test_tokens_end_with_the_session(server: LiveServer, smtp: SmtpCapture) -> None:
    registered = register_client(server)
    browser = signed_in_browser(server, smtp, "nao@example.com")
    try:
        tokens = exchange(server, registered, code_for(browser, registered.client_id)).json()
        assert userinfo_status(server, tokens["access_token"]) == 200
        unused = code_for(browser, registered.client_id)
        assert browser.post("/signout", {}).status_code == 303
    finally:
        browser.close()
    assert userinfo_status(server, tokens["access_token"]) == 401
    assert exchange(server, registered, unused).json()["error"] == "invalid_grant"


def test_a_code_redeemed_twenty_times_at_once_gives_one_token(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server)
    browser = signed_in_browser(server, smtp, "sho@example.com")
    try:
        code = code_for(browser, registered.client_id)
    finally:
        browser.close()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: exchange(server, registered, code), range(20)))
    assert sorted(answer.status_code for answer in answers) == [200] + [400] * 19
    granted = next(answer for answer in answers if answer.status_code == 200)
    assert userinfo_status(server, granted.json()["access_token"]) == 401  # replays revoked it
