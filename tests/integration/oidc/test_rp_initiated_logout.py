"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) over real HTTP: a hint
that names this session ends it at once and returns to the registered URI with
``state``; anything less asks the person first; an unregistered URI, a forged hint or a
hint for another person never redirects and never ends anything."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import text

from sekisho.core.keys import Keyring
from sekisho.oidc import signing_keys
from sekisho.store.oidc import SqlOidc
from tests.support.browser import FormBrowser
from tests.support.oidc import (
    OFFLINE_SCOPES,
    Registered,
    code_for,
    exchange,
    post_as,
    query_of,
    refresh_with,
    register_client,
    response_of,
    sign_in_by_code,
    signed_in_browser,
    userinfo_status,
)
from tests.support.server import SECRET_KEY, LiveServer
from tests.support.smtp import SmtpCapture

AFTER = "https://rp.example/signed-out"


def _id_token(server: LiveServer, browser: FormBrowser, registered: Registered) -> str:
    answer = exchange(server, registered, code_for(browser, registered.client_id))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id_token"])


def _logout(browser: FormBrowser, **params: str) -> Any:
    return browser.http.get("/logout?" + urlencode(params))


def _events(server: LiveServer, event: str) -> list[dict[str, Any]]:
    with server.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT outcome, session_id, detail FROM audit_events WHERE event = :e"),
            {"e": event},
        ).mappings()
        return [{**row, "detail": json.loads(row["detail"])} for row in rows]


def _expired_copy(server: LiveServer, id_token: str) -> str:
    """The same ID token, expired an hour ago, signed with the provider's own key."""
    claims = dict(jwt.decode(id_token, _provider_key(server)).claims)
    claims["iat"] = int(time.time()) - 7200
    claims["exp"] = int(time.time()) - 3600
    key = _provider_key(server)
    return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "JWT"}, claims, key)


def _provider_key(server: LiveServer) -> ECKey:
    database = server.database
    try:
        with database.reading() as repos:
            [stored] = [
                key
                for key in SqlOidc(repos.connection).signing_keys()
                if key.alg == signing_keys.ALGORITHM
            ]
    finally:
        database.dispose()
    opened = signing_keys.PrivateKeys(Keyring(SECRET_KEY)).open(stored)
    assert isinstance(opened, ECKey)
    return opened


def test_discovery_names_the_end_session_endpoint(server: LiveServer) -> None:
    with server.client() as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert metadata["end_session_endpoint"] == server.url + "/logout"


def test_a_hint_naming_this_session_ends_it_and_returns_with_state(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server, post_logout_redirect_uris=(AFTER,))
    browser = signed_in_browser(server, smtp, "out@example.com")
    hint = _id_token(server, browser, registered)
    probe = browser.http.head("/logout?" + urlencode({"id_token_hint": hint}))
    assert probe.status_code == 200
    assert browser.signed_in()  # HEAD is safe: it ends nothing

    answer = _logout(browser, id_token_hint=hint, post_logout_redirect_uri=AFTER, state="s<&>1")

    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == AFTER + "?" + urlencode({"state": "s<&>1"})
    assert not browser.signed_in()
    [ended] = _events(server, "oidc.logout")
    assert ended["outcome"] == "success"
    assert ended["detail"]["client_id"] == registered.client_id
    assert len(_events(server, "session.signed_out")) == 1


def test_the_sessions_tokens_die_with_it_at_every_endpoint(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """After the logout, the access and refresh tokens issued in the ended session are
    refused by every endpoint that takes them, the confirmation API included."""
    registered = register_client(server, scopes=OFFLINE_SCOPES)
    browser = signed_in_browser(server, smtp, "gone@example.com")
    code = code_for(browser, registered.client_id, scope=" ".join(OFFLINE_SCOPES))
    tokens = exchange(server, registered, code).json()
    access = str(tokens["access_token"])
    assert userinfo_status(server, access) == 200

    answer = _logout(browser, id_token_hint=tokens["id_token"])

    assert answer.status_code == 200, answer.text
    assert not browser.signed_in()
    assert userinfo_status(server, access) == 401
    for token in (access, tokens["refresh_token"]):
        assert post_as(server, registered, "/introspect", token=token).json() == {"active": False}
    assert refresh_with(server, registered, tokens["refresh_token"]).json()["error"] == (
        "invalid_grant"
    )
    with server.client() as http:
        asked = http.post(
            "/api/v1/confirmations",
            json={"action": "withdrawal", "details": {}},
            headers={"Authorization": f"Bearer {access}"},
        )
    assert (asked.status_code, asked.json()["error"]) == (401, "access_token_invalid")


def test_an_expired_hint_still_identifies_the_session(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server, post_logout_redirect_uris=(AFTER,))
    browser = signed_in_browser(server, smtp, "expired@example.com")
    hint = _expired_copy(server, _id_token(server, browser, registered))

    answer = _logout(browser, id_token_hint=hint, post_logout_redirect_uri=AFTER)

    assert (answer.status_code, answer.headers["location"]) == (303, AFTER)
    assert not browser.signed_in()


def test_without_a_hint_the_person_confirms_with_a_csrf_checked_form(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server, post_logout_redirect_uris=(AFTER,))
    browser = signed_in_browser(server, smtp, "asked@example.com")
    params = {
        "client_id": registered.client_id,
        "post_logout_redirect_uri": AFTER,
        "state": "st-9" + "z" * 3000,  # the ASP.NET Core handler's states are long
    }

    page = _logout(browser, **params)

    assert page.status_code == 200, page.text
    assert 'action="/logout/confirm"' in page.text
    assert "Brokerage" in page.text
    assert browser.signed_in()
    forged = browser.http.post(
        "/logout/confirm",
        data=params,
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert forged.status_code == 403
    assert browser.signed_in()
    confirmed = browser.post("/logout/confirm", params)
    assert query_of(response_of(confirmed)) == {"state": params["state"]}
    assert response_of(confirmed).startswith(AFTER + "?")
    assert not browser.signed_in()
    [ended] = _events(server, "oidc.logout")
    assert ended["detail"]["confirmed"] == "yes"


def test_a_hint_from_an_earlier_session_of_the_same_person_asks_first(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server, post_logout_redirect_uris=(AFTER,))
    earlier = signed_in_browser(server, smtp, "twice@example.com")
    hint = _id_token(server, earlier, registered)
    earlier.post("/signout", {})
    sign_in_by_code(earlier, smtp, "twice@example.com")

    answer = _logout(earlier, id_token_hint=hint, post_logout_redirect_uri=AFTER)

    assert answer.status_code == 200
    assert 'id="logout-form"' in answer.text
    assert earlier.signed_in()


def test_refusals_are_pages_that_end_nothing_and_redirect_nowhere(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server, post_logout_redirect_uris=(AFTER,))
    other = register_client(server, name="Other", post_logout_redirect_uris=(AFTER,))
    mallory = signed_in_browser(server, smtp, "mallory@example.com")
    mallory_hint = _id_token(server, mallory, registered)
    browser = signed_in_browser(server, smtp, "victim@example.com")
    hint = _id_token(server, browser, registered)
    foreign = ECKey.generate_key("P-256", auto_kid=True)
    forged = jwt.encode(
        {"alg": "ES256", "kid": foreign.kid, "typ": "JWT"},
        dict(jwt.decode(hint, _provider_key(server)).claims),
        foreign,
    )
    cases = [
        (
            {"id_token_hint": hint, "post_logout_redirect_uri": AFTER + "/"},
            "post_logout_redirect_uri_mismatch",
        ),
        (
            {
                "client_id": registered.client_id,
                "post_logout_redirect_uri": "https://evil.example/",
            },
            "post_logout_redirect_uri_mismatch",
        ),
        ({"post_logout_redirect_uri": AFTER}, "post_logout_redirect_uri_mismatch"),
        ({"id_token_hint": forged, "post_logout_redirect_uri": AFTER}, "invalid_id_token_hint"),
        ({"id_token_hint": "not.a.token"}, "invalid_id_token_hint"),
        ({"id_token_hint": hint, "client_id": other.client_id}, "client_mismatch"),
        ({"client_id": "nobody"}, "unknown_client"),
        (
            {"id_token_hint": mallory_hint, "post_logout_redirect_uri": AFTER},
            "id_token_hint_mismatch",
        ),
    ]
    for params, reason in cases:
        answer = _logout(browser, **params)
        assert answer.status_code == 400, (reason, answer.text)
        assert "location" not in answer.headers
        assert re.search(rf'data-error="{reason}"', answer.text), (reason, answer.text)
    assert browser.signed_in()
    [refused] = _events(server, "oidc.logout")
    assert (refused["outcome"], refused["detail"]["error"]) == ("failure", "id_token_hint_mismatch")


def test_without_a_session_it_returns_to_the_registered_uri(server: LiveServer) -> None:
    registered = register_client(server, post_logout_redirect_uris=(AFTER,))
    with server.client() as anonymous:
        answer = anonymous.post(
            "/logout",
            data={
                "client_id": registered.client_id,
                "post_logout_redirect_uri": AFTER,
                "state": "x",
            },
        )
    assert (answer.status_code, answer.headers["location"]) == (303, AFTER + "?state=x")


def test_ui_locales_picks_the_confirmation_pages_language(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server, post_logout_redirect_uris=(AFTER,))
    browser = signed_in_browser(server, smtp, "nihongo@example.com")
    browser.http.cookies.delete("sekisho_lang")

    page = _logout(browser, client_id=registered.client_id, ui_locales="ja en")

    assert page.status_code == 200
    assert '<html lang="ja"' in page.text
    assert "サインアウト" in page.text


def test_the_aspnet_core_handlers_sign_out_request(server: LiveServer, smtp: SmtpCapture) -> None:
    """What ``SignOutAsync(OpenIdConnectDefaults.AuthenticationScheme)`` sends with
    ``SaveTokens = true``: the hint, the signed-out callback, its protected state and
    the library's telemetry parameters, which Sekisho ignores."""
    callback = "https://app.example/signout-callback-oidc"
    registered = register_client(server, post_logout_redirect_uris=(callback,))
    browser = signed_in_browser(server, smtp, "aspnet@example.com")
    hint = _id_token(server, browser, registered)
    state = "CfDJ8Ab_protected-properties_" + "x" * 300

    answer = _logout(
        browser,
        post_logout_redirect_uri=callback,
        id_token_hint=hint,
        state=state,
        **{"x-client-SKU": "ID_NET9_0", "x-client-ver": "8.0.1.0"},
    )

    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == callback + "?" + urlencode({"state": state})
    assert not browser.signed_in()
