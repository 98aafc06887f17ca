"""Pairwise subject identifiers (OIDC Core §8.1) over real HTTP: a pairwise client
knows the person by a ``sub`` of its own sector (the host of its redirect URIs), the
same in the ID token, the access token, UserInfo, the logout token and the
``id_token_hint`` it sends back; public clients keep the user id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import text

from sekisho.core.keys import Keyring
from sekisho.oidc import clients
from tests.conftest import ServerFactory
from tests.integration.admin.support import bearer, create_key
from tests.integration.oidc.test_backchannel_logout import FAST, verify_logout_token
from tests.support.browser import FormBrowser
from tests.support.cli import run_sekisho
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
from tests.support.server import SECRET_KEY, LiveServer
from tests.support.smtp import SmtpCapture

OTHER_HOST = "https://other.example/cb"


def _sign_in_to(
    server: LiveServer, browser: FormBrowser, registered: Registered, redirect_uri: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """ID token claims, access token claims and UserInfo answer of one authorization."""
    code = code_for(browser, registered.client_id, redirect_uri=redirect_uri)
    answer = exchange(server, registered, code, redirect_uri=redirect_uri)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    with server.client() as http:
        key_set = KeySet.import_key_set(http.get("/.well-known/jwks.json").json())
        info = http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200, info.text
    access = dict(jwt.decode(body["access_token"], key_set, algorithms=["ES256"]).claims)
    return (
        verify_id_token(server, body["id_token"], client_id=registered.client_id),
        access,
        info.json(),
    )


def test_pairwise_clients_of_different_sectors_see_different_stable_subjects(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(**FAST)
    receiver = LogoutReceiver().start()
    try:
        user_id = server.add_user("pair@example.com")
        pairwise = register_client(
            server, subject_type="pairwise", backchannel_logout_uri=receiver.uri
        )
        same_sector = register_client(
            server,
            subject_type="pairwise",
            redirect_uris=("https://rp.example/other-callback",),
        )
        other_sector = register_client(server, subject_type="pairwise", redirect_uris=(OTHER_HOST,))
        public = register_client(server)
        browser = FormBrowser(server.url)
        sign_in_by_code(browser, smtp, "pair@example.com")

        first = _sign_in_to(server, browser, pairwise, "https://rp.example/callback")
        again = _sign_in_to(server, browser, pairwise, "https://rp.example/callback")
        same = _sign_in_to(server, browser, same_sector, "https://rp.example/other-callback")
        other = _sign_in_to(server, browser, other_sector, OTHER_HOST)
        plain = _sign_in_to(server, browser, public, "https://rp.example/callback")

        subject = first[0]["sub"]
        assert subject != user_id
        assert {first[1]["sub"], first[2]["sub"], again[0]["sub"], same[0]["sub"]} == {subject}
        assert other[0]["sub"] not in (subject, user_id)
        assert other[0]["sub"] == other[1]["sub"] == other[2]["sub"]
        assert plain[0]["sub"] == plain[1]["sub"] == plain[2]["sub"] == user_id
        # sid is keyed per sector as well, or it would link the two sectors again
        assert first[0]["sid"] == same[0]["sid"]
        assert len({first[0]["sid"], other[0]["sid"], plain[0]["sid"]}) == 3
        with server.database.engine.connect() as connection:
            [session_id] = connection.execute(text("SELECT id FROM sessions")).scalars().all()
        assert plain[0]["sid"] == session_id

        browser.post("/signout", {})
        tokens = receiver.wait_for_tokens(1)
    finally:
        receiver.stop()
    claims = verify_logout_token(server, tokens[0], client_id=pairwise.client_id)
    assert claims["sub"] == subject
    assert claims["sid"] == first[0]["sid"]


def test_a_pairwise_id_token_hint_signs_the_person_out(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    after = "https://rp.example/bye"
    registered = register_client(
        server, subject_type="pairwise", post_logout_redirect_uris=(after,)
    )
    browser = signed_in_browser(server, smtp, "pairout@example.com")
    answer = exchange(server, registered, code_for(browser, registered.client_id))
    hint = answer.json()["id_token"]

    logout = browser.http.get(
        "/logout?" + urlencode({"id_token_hint": hint, "post_logout_redirect_uri": after})
    )

    assert (logout.status_code, logout.headers["location"]) == (303, after)
    assert not browser.signed_in()


def test_discovery_offers_both_subject_types(server: LiveServer) -> None:
    with server.client() as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert metadata["subject_types_supported"] == ["public", "pairwise"]


def test_a_pairwise_client_must_have_one_sector() -> None:
    register = {
        "name": "Two hosts",
        "post_logout_redirect_uris": [],
        "auth_method": "client_secret_basic",
        "application_type": "web",
        "first_party": True,
        "scopes": ["openid"],
        "id_token_lifetime": timedelta(minutes=5),
        "access_token_lifetime": timedelta(minutes=5),
        "now": datetime.now(UTC),
    }
    with pytest.raises(clients.RegistrationError, match="share one host"):
        clients.register(
            Keyring(SECRET_KEY),
            redirect_uris=["https://a.example/cb", OTHER_HOST],
            subject_type="pairwise",
            **register,  # type: ignore[arg-type]
        )
    with pytest.raises(clients.RegistrationError, match="subject type"):
        clients.register(
            Keyring(SECRET_KEY),
            redirect_uris=[OTHER_HOST],
            subject_type="secret",
            **register,  # type: ignore[arg-type]
        )


def test_clients_add_takes_the_logout_and_subject_settings(server: LiveServer) -> None:
    url = server.settings.database_url
    refused = run_sekisho(
        url,
        "clients",
        "add",
        "--name",
        "Spread",
        "--redirect-uri",
        "https://a.example/cb",
        "--redirect-uri",
        OTHER_HOST,
        "--subject-type",
        "pairwise",
    )
    assert refused.returncode == 2
    assert "share one host" in refused.stderr
    insecure = run_sekisho(
        url,
        "clients",
        "add",
        "--name",
        "Plain",
        "--redirect-uri",
        OTHER_HOST,
        "--backchannel-logout-uri",
        "http://rp.example/logout",
    )
    assert insecure.returncode == 2
    made = run_sekisho(
        url,
        "clients",
        "add",
        "--name",
        "Full",
        "--client-id",
        "full",
        "--redirect-uri",
        OTHER_HOST,
        "--post-logout-redirect-uri",
        "https://other.example/bye",
        "--backchannel-logout-uri",
        "https://other.example/backchannel",
        "--backchannel-logout-session-required",
        "--subject-type",
        "pairwise",
    )
    assert made.returncode == 0, made.stderr
    shown = run_sekisho(url, "clients", "show", "full")
    assert '"backchannel_logout_uri": "https://other.example/backchannel"' in shown.stdout
    assert '"backchannel_logout_session_required": true' in shown.stdout
    assert '"subject_type": "pairwise"' in shown.stdout
    assert '"post_logout_redirect_uris": [\n    "https://other.example/bye"' in shown.stdout


def test_the_admin_api_takes_the_logout_and_subject_settings(server: LiveServer) -> None:
    _key_id, key = create_key(server, "clients:read", "clients:write")
    body = {
        "name": "Via API",
        "redirect_uris": [OTHER_HOST],
        "post_logout_redirect_uris": ["https://other.example/bye"],
        "backchannel_logout_uri": "https://other.example/backchannel",
        "backchannel_logout_session_required": True,
        "subject_type": "pairwise",
    }
    with server.client(headers=bearer(key)) as client:
        made = client.post("/api/v1/admin/clients", json=body)
        spread = client.post(
            "/api/v1/admin/clients",
            json={**body, "redirect_uris": [OTHER_HOST, "https://a.example/cb"]},
        )
        fragment = client.post(
            "/api/v1/admin/clients",
            json={**body, "backchannel_logout_uri": "https://other.example/b#x"},
        )
        assert made.status_code == 201, made.text
        shown = client.get(f"/api/v1/admin/clients/{made.json()['client_id']}").json()
    assert (spread.status_code, fragment.status_code) == (400, 400)
    assert spread.json()["error"] == "invalid_client_metadata"
    assert shown["backchannel_logout_uri"] == "https://other.example/backchannel"
    assert shown["backchannel_logout_session_required"] is True
    assert shown["subject_type"] == "pairwise"
