"""An application's side of transaction confirmations, as a relying party would write it:
an access token from the code flow, the confirmation API over HTTP, and the signed
confirmation checked with joserfc against the published JWKS (not the server's code)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import rfc8785
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.authenticator import SoftAuthenticator, b64url, b64url_decode
from tests.support.oidc import Registered, authorize_url, exchange, query_of
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

WITHDRAWAL = {"amount": "1250000", "currency": "JPY", "destination": "MUFG 0123-4567890"}
ACTIONS = """
[actions.withdrawal]
title = { en = "Withdrawal", ja = "出金" }

[actions.withdrawal.details]
amount = { type = "amount", currency = "currency", label = { en = "Amount", ja = "金額" } }
currency = { type = "currency", label = { en = "Currency", ja = "通貨" } }
destination = { type = "string", label = { en = "To account", ja = "出金先口座" } }

[actions.close_account]
title = { en = "Closing the account", ja = "口座の解約" }

[actions.close_account.details]
account = { type = "string", label = { en = "Account", ja = "口座" } }
"""
STEP_UP = """\
default_tier = "standard"

[tiers.standard]
methods = ["passkey", "email"]

[tiers.standard.step_up.withdrawal]
aal = {aal}
max_age = "5m"
"""


def confirming_server(
    make_server: Callable[..., LiveServer], tmp_path: Path, *, aal: int = 2, **settings: Any
) -> LiveServer:
    """A server with ACTIONS declared, whose one tier asks for ``aal`` within the last
    five minutes before a withdrawal."""
    path = tmp_path / "policy.toml"
    path.write_text(STEP_UP.format(aal=aal) + ACTIONS, encoding="utf-8")
    return make_server(policy_file=path, **settings)


def person(
    server: LiveServer, smtp: SmtpCapture, browser: httpx.Client, email: str
) -> SoftAuthenticator:
    """An account with a passkey, signed in with it (AAL2) in ``browser``."""
    server.add_user(email)
    authenticator = SoftAuthenticator()
    email_sign_in(server, smtp, browser, email)
    assert register(server, browser, authenticator).status_code == 201
    assert sign_in(server, browser, authenticator).status_code == 200
    return authenticator


def details_hash(details: dict[str, Any]) -> str:
    """What an application computes: base64url(SHA-256(RFC 8785 JCS(details)))."""
    return b64url(hashlib.sha256(rfc8785.dumps(details)).digest())


def binding(*, jti: str, aud: str, sub: str, action: str, details: dict[str, Any]) -> bytes:
    """The challenge's second half, as docs/flows/step-up.md defines it."""
    document = {
        "action": action,
        "aud": aud,
        "details_hash": details_hash(details),
        "jti": jti,
        "sub": sub,
    }
    return hashlib.sha256(rfc8785.dumps(document)).digest()


def access_token(server: LiveServer, registered: Registered, browser: httpx.Client) -> str:
    """The code flow for a first-party client, in a browser signed in to Sekisho."""
    answer = browser.get(authorize_url(registered.client_id))
    assert answer.status_code == 303, answer.text
    tokens = exchange(server, registered, query_of(answer.headers["location"])["code"])
    assert tokens.status_code == 200, tokens.text
    return str(tokens.json()["access_token"])


def ask(
    server: LiveServer,
    token: str,
    *,
    action: str = "withdrawal",
    details: dict[str, Any] | None = None,
    return_uri: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"action": action, "details": details or WITHDRAWAL}
    if return_uri is not None:
        body["return_uri"] = return_uri
    with server.client() as http:
        return http.post(
            "/api/v1/confirmations", json=body, headers={"Authorization": f"Bearer {token}"}
        )


def options(browser: httpx.Client, confirmation_id: str) -> httpx.Response:
    return browser.post(f"/api/v1/confirmations/{confirmation_id}/options", json={})


def confirm(
    server: LiveServer,
    browser: httpx.Client,
    authenticator: SoftAuthenticator,
    confirmation_id: str,
    *,
    started: httpx.Response | None = None,
    offered_only: bool = True,
) -> httpx.Response:
    """The page's ceremony: options, an assertion over their challenge, verify. Without
    ``offered_only`` the authenticator answers with its own credential even when the
    options did not offer it (what a tampered page could send)."""
    started = started or options(browser, confirmation_id)
    assert started.status_code == 200, started.text
    public_key = started.json()["publicKey"]
    offered = [b64url_decode(c["id"]) for c in public_key["allowCredentials"]]
    credential = authenticator.assert_(
        rp_id=public_key["rpId"],
        origin=server.settings.public_origin,
        challenge=b64url_decode(public_key["challenge"]),
        allow_credentials=offered if offered_only else None,
    )
    return browser.post(
        f"/api/v1/confirmations/{confirmation_id}/verify",
        json={"flow_id": started.json()["flow_id"], "credential": credential},
    )


def collect(server: LiveServer, registered: Registered, confirmation_id: str) -> httpx.Response:
    with server.client() as http:
        return http.get(
            f"/api/v1/confirmations/{confirmation_id}",
            auth=(registered.client_id, registered.secret or ""),
        )


def redeem(
    server: LiveServer,
    registered: Registered,
    confirmation_id: str,
    *,
    action: str = "withdrawal",
    details: dict[str, Any] | None = None,
) -> httpx.Response:
    with server.client() as http:
        return http.post(
            f"/api/v1/confirmations/{confirmation_id}/redeem",
            json={"action": action, "details": details or WITHDRAWAL},
            auth=(registered.client_id, registered.secret or ""),
        )


def verify_confirmation(server: LiveServer, token: str, *, client_id: str) -> dict[str, Any]:
    """Check a signed confirmation as an application must: the JWKS signature, the
    explicit type, issuer, audience and lifetime."""
    with httpx.Client(timeout=30) as http:
        metadata = http.get(server.url + "/.well-known/openid-configuration").json()
        key_set = KeySet.import_key_set(http.get(metadata["jwks_uri"]).json())
    decoded = jwt.decode(token, key_set, algorithms=["ES256"])
    assert decoded.header["typ"] == "txn-confirmation+jwt"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        jti={"essential": True},
        sub={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)
