"""The requests ASP.NET Core's OpenIdConnectHandler sends when configured as
docs/integrations/aspnet-core.md says: ``response_mode=form_post`` with its
``x-client-SKU``/``x-client-ver`` parameters and a long protected ``state``, the token
request with ``client_secret_post`` and PKCE, UserInfo with the bearer token, and a
step-up through ``OnRedirectToIdentityProvider`` (``acr_values``, ``max_age``)."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from tests.support.oidc import (
    VERIFIER,
    challenge,
    form_post_of,
    register_client,
    signed_in_browser,
    verify_id_token,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

CALLBACK = "https://app.example/signin-oidc"


def _authorize(client_id: str, state: str, **extra: str) -> str:
    params = {
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid profile email",
        "code_challenge": challenge(),
        "code_challenge_method": "S256",
        "response_mode": "form_post",
        "nonce": secrets.token_urlsafe(48),
        "state": state,
        "x-client-SKU": "ID_NET9_0",
        "x-client-ver": "8.0.1.0",
        **extra,
    }
    return "/authorize?" + urlencode(params)


def test_the_handlers_form_post_token_and_userinfo_requests(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(
        server, auth_method="client_secret_post", redirect_uris=(CALLBACK,)
    )
    assert registered.secret is not None
    browser = signed_in_browser(server, smtp, "mika@example.com")
    state = "CfDJ8" + secrets.token_urlsafe(700)  # a data-protected AuthenticationProperties
    try:
        action, fields = form_post_of(browser.http.get(_authorize(registered.client_id, state)))
        assert action == CALLBACK
        assert fields["state"] == state
        assert fields["iss"] == server.settings.public_origin
        with server.client() as http:
            token = http.post(
                "/token",
                data={
                    "client_id": registered.client_id,
                    "client_secret": registered.secret,
                    "code": fields["code"],
                    "grant_type": "authorization_code",
                    "redirect_uri": CALLBACK,
                    "code_verifier": VERIFIER,
                },
            )
            assert token.status_code == 200, token.text
            body = token.json()
            assert body["token_type"] == "Bearer"
            claims = verify_id_token(server, body["id_token"], client_id=registered.client_id)
            assert claims["amr"] == ["email"]
            info = http.get(
                "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
            )
            assert info.status_code == 200
            assert info.json()["sub"] == claims["sub"]
            assert info.json()["email"] == "mika@example.com"

        _action, refused = form_post_of(
            browser.http.get(
                _authorize(registered.client_id, state, acr_values="phr", max_age="300")
            )
        )
        assert refused["error"] == "unmet_authentication_requirements"
        assert refused["state"] == state
        assert "code" not in refused
    finally:
        browser.close()
