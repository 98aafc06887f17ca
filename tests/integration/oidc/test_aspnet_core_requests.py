"""The requests ASP.NET Core's OpenIdConnectHandler sends when configured as
docs/integrations/aspnet-core.md says: ``response_mode=form_post`` with its
``x-client-SKU``/``x-client-ver`` parameters and a long protected ``state``, the token
request with ``client_secret_post`` and PKCE, UserInfo with the bearer token, and a
step-up through ``OnRedirectToIdentityProvider`` (``acr_values``, ``max_age``)."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

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


def test_the_handlers_pushed_request_when_discovery_advertises_par(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """ASP.NET Core 9's default ``PushedAuthorizationBehavior.UseIfAvailable``: the
    handler POSTs every authorization parameter, with ``client_id`` and
    ``client_secret`` in the body, to ``pushed_authorization_request_endpoint``, then
    redirects the browser with only ``client_id`` and ``request_uri``."""
    registered = register_client(
        server, auth_method="client_secret_post", redirect_uris=(CALLBACK,), require_par=True
    )
    assert registered.secret is not None
    browser = signed_in_browser(server, smtp, "sana@example.com")
    state = "CfDJ8" + secrets.token_urlsafe(700)
    try:
        with server.client() as http:
            metadata = http.get("/.well-known/openid-configuration").json()
            pushed_form = parse_qs(urlsplit(_authorize(registered.client_id, state)).query)
            pushed = http.post(
                metadata["pushed_authorization_request_endpoint"],
                data={
                    **{name: values[0] for name, values in pushed_form.items()},
                    "client_secret": registered.secret,
                },
            )
        assert pushed.status_code == 201, pushed.text
        redirect = (
            metadata["authorization_endpoint"]
            + "?"
            + urlencode(
                {"client_id": registered.client_id, "request_uri": pushed.json()["request_uri"]}
            )
        )
        action, fields = form_post_of(browser.http.get(redirect))
        assert action == CALLBACK
        assert fields["state"] == state
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
        verify_id_token(server, token.json()["id_token"], client_id=registered.client_id)
    finally:
        browser.close()
