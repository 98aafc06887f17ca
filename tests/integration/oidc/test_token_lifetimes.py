"""A client's own token lifetimes (``sekisho clients add --id-token-lifetime
--access-token-lifetime``): every ID token and access token issued to it, from a code
or a refresh, lives exactly that long (``exp`` - ``iat``; RFC 9068 §2.2, OIDC Core §2)."""

from __future__ import annotations

from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.oidc import (
    Registered,
    add_client_by_cli,
    code_for,
    exchange,
    refresh_with,
    signed_in_browser,
    verify_id_token,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

ID_TOKEN_SECONDS = 137
ACCESS_TOKEN_SECONDS = 43


def _access_claims(server: LiveServer, access_token: str) -> dict[str, Any]:
    with httpx.Client(timeout=30) as http:
        metadata = http.get(server.url + "/.well-known/openid-configuration").json()
        key_set = KeySet.import_key_set(http.get(metadata["jwks_uri"]).json())
    return dict(jwt.decode(access_token, key_set, algorithms=["ES256"]).claims)


def _check_lifetimes(server: LiveServer, registered: Registered, body: dict[str, Any]) -> None:
    claims = verify_id_token(server, body["id_token"], client_id=registered.client_id)
    assert claims["exp"] - claims["iat"] == ID_TOKEN_SECONDS
    access = _access_claims(server, body["access_token"])
    assert access["exp"] - access["iat"] == ACCESS_TOKEN_SECONDS
    assert body["expires_in"] == ACCESS_TOKEN_SECONDS


def test_a_clients_lifetimes_set_its_tokens_exp(server: LiveServer, smtp: SmtpCapture) -> None:
    registered = add_client_by_cli(
        server,
        "--scope",
        "openid",
        "--scope",
        "offline_access",
        "--id-token-lifetime",
        str(ID_TOKEN_SECONDS),
        "--access-token-lifetime",
        str(ACCESS_TOKEN_SECONDS),
    )
    browser = signed_in_browser(server, smtp, "toki@example.com")
    try:
        code = code_for(browser, registered.client_id, scope="openid offline_access")
    finally:
        browser.close()
    first = exchange(server, registered, code)
    assert first.status_code == 200, first.text
    _check_lifetimes(server, registered, first.json())
    renewed = refresh_with(server, registered, first.json()["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    _check_lifetimes(server, registered, renewed.json())
