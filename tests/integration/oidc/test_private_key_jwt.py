"""``private_key_jwt`` client authentication (RFC 7523; OIDC Core §9; SECURITY.md case
46) over real HTTP: an assertion signed with a key of the client's registered JWKS
authenticates it once; replayed (also concurrently), for another audience, expired,
without ``exp`` or ``jti``, too long-lived, signed with another key or with ``none``
-> ``invalid_client``. Assertions are made here with joserfc, as a client would."""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from sekisho.core.encoding import base64url
from tests.support.oidc import (
    REDIRECT_URI,
    VERIFIER,
    challenge,
    code_for,
    register_client,
    signed_in_browser,
    verify_id_token,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture
from tests.support.statements import driver_statements

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
Key = ECKey | RSAKey


def _jwks(*keys: Key) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def _assertion(
    key: Key,
    client_id: str,
    audience: Any,
    *,
    alg: str = "ES256",
    with_kid: bool = True,
    **claims: Any,
) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
        **claims,
    }
    body = {name: value for name, value in body.items() if value is not None}
    header = {"alg": alg, "kid": key.kid} if with_kid else {"alg": alg}
    return jwt.encode(header, body, key, algorithms=[alg])


def _token(
    server: LiveServer, assertion: str, code: str = "no-such-code", **extra: str
) -> httpx.Response:
    with server.client() as http:
        return http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": VERIFIER,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
                **extra,
            },
        )


def _outcome(answer: httpx.Response) -> tuple[int, str]:
    """(status, error): 400 invalid_grant means the client authenticated (the code is made
    up); 401 invalid_client means it did not."""
    return answer.status_code, answer.json()["error"]


AUTHENTICATED = (400, "invalid_grant")
REFUSED = (401, "invalid_client")


def _refusal_reasons(server: LiveServer) -> list[str]:
    with server.database.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT detail FROM audit_events"
            " WHERE event = 'oidc.token_endpoint_auth.refused' ORDER BY id"
        ).scalars()
        return [json.loads(row)["reason"] for row in rows]


def test_an_assertion_signs_the_client_in_once(server: LiveServer, smtp: SmtpCapture) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    registered = register_client(server, auth_method="private_key_jwt", jwks=_jwks(key))
    assert registered.secret is None
    issuer = server.settings.public_origin
    browser = signed_in_browser(server, smtp, "kei@example.com")
    try:
        code = code_for(browser, registered.client_id)
    finally:
        browser.close()
    assertion = _assertion(key, registered.client_id, issuer)
    answer = _token(server, assertion, code, client_id=registered.client_id)
    assert answer.status_code == 200, answer.text
    verify_id_token(server, answer.json()["id_token"], client_id=registered.client_id)
    assert _outcome(_token(server, assertion)) == REFUSED
    assert _refusal_reasons(server) == ["replayed"]


def test_rsa_keys_and_the_token_endpoint_audience_are_accepted(server: LiveServer) -> None:
    rsa = RSAKey.generate_key(2048, auto_kid=True)
    ec = ECKey.generate_key("P-256", auto_kid=True)
    registered = register_client(server, auth_method="private_key_jwt", jwks=_jwks(ec, rsa))
    token_endpoint = server.settings.public_origin + "/token"
    for alg in ("RS256", "PS256"):
        signed = _assertion(rsa, registered.client_id, token_endpoint, alg=alg)
        assert _outcome(_token(server, signed)) == AUTHENTICATED, alg
    both = _assertion(ec, registered.client_id, [server.settings.public_origin, token_endpoint])
    assert _outcome(_token(server, both)) == AUTHENTICATED


def test_an_assertion_without_kid_is_checked_against_each_registered_key(
    server: LiveServer,
) -> None:
    """RFC 7515 §4.1.4: ``kid`` is optional, and Authlib's client sends none; a client
    whose set holds two keys (a rotation) authenticates with either, a stranger with
    neither."""
    old, new = ECKey.generate_key("P-256", auto_kid=True), ECKey.generate_key("P-256")
    rsa = RSAKey.generate_key(2048, auto_kid=True)
    registered = register_client(server, auth_method="private_key_jwt", jwks=_jwks(old, rsa, new))
    issuer = server.settings.public_origin
    for key, alg in ((old, "ES256"), (new, "ES256"), (rsa, "PS256")):
        signed = _assertion(key, registered.client_id, issuer, alg=alg, with_kid=False)
        assert _outcome(_token(server, signed)) == AUTHENTICATED, alg
    stranger = ECKey.generate_key("P-256")
    refused = _assertion(stranger, registered.client_id, issuer, with_kid=False)
    assert _outcome(_token(server, refused)) == REFUSED
    assert _refusal_reasons(server) == ["signature:bad_signature"]


def test_every_bad_assertion_is_invalid_client(server: LiveServer) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    registered = register_client(server, auth_method="private_key_jwt", jwks=_jwks(key))
    secret_client = register_client(server)
    client_id = registered.client_id
    issuer = server.settings.public_origin
    now = int(time.time())
    header = base64url(json.dumps({"alg": "none", "kid": key.kid}).encode())
    claims = {"iss": client_id, "sub": client_id, "aud": issuer, "exp": now + 60, "jti": "n-1"}
    unsigned = f"{header}.{base64url(json.dumps(claims).encode())}."
    cases = {
        "another audience": _assertion(key, client_id, "https://other.example"),
        "the userinfo endpoint": _assertion(key, client_id, issuer + "/userinfo"),
        "ours and another": _assertion(key, client_id, [issuer, "https://other.example"]),
        "no audience": _assertion(key, client_id, None),
        "expired": _assertion(key, client_id, issuer, exp=now - 120, iat=now - 180),
        "no exp": _assertion(key, client_id, issuer, exp=None),
        "lives an hour": _assertion(key, client_id, issuer, exp=now + 3600),
        "no jti": _assertion(key, client_id, issuer, jti=None),
        "another issuer": _assertion(key, client_id, issuer, iss="someone-else"),
        "a key not registered": _assertion(stranger, client_id, issuer),
        "alg none": unsigned,
        "another client's id": _assertion(key, secret_client.client_id, issuer),
        "garbage": "not.a.jwt",
        # JSON deeper than the interpreter's recursion limit, read before any check
        "nested payload": f"{header}.{base64url(b'[' * 1400 + b']' * 1400)}.",
    }
    for name, assertion in cases.items():
        assert _outcome(_token(server, assertion)) == REFUSED, name
    mismatched = _token(server, _assertion(key, client_id, issuer), client_id="someone-else")
    assert _outcome(mismatched) == REFUSED
    with server.client() as http:
        secret_instead = http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": "x",
                "client_id": client_id,
                "client_secret": "guess",
                "redirect_uri": REDIRECT_URI,
                "code_verifier": VERIFIER,
            },
        )
    assert _outcome(secret_instead) == REFUSED
    reasons = _refusal_reasons(server)
    assert reasons.count("audience") == 4
    assert "claims:expired_token" in reasons
    assert "claims:missing_claim" in reasons
    assert "lifetime" in reasons
    assert "not_a_private_key_jwt_client" in reasons
    assert any(reason.startswith("signature:") for reason in reasons)


def test_concurrent_replays_authenticate_once(server: LiveServer) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    registered = register_client(server, auth_method="private_key_jwt", jwks=_jwks(key))
    assertion = _assertion(key, registered.client_id, server.settings.public_origin)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _n: _outcome(_token(server, assertion)), range(8)))
    assert outcomes.count(AUTHENTICATED) == 1
    assert outcomes.count(REFUSED) == 7


def test_the_pushed_request_endpoint_takes_assertions_once(server: LiveServer) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    registered = register_client(server, auth_method="private_key_jwt", jwks=_jwks(key))
    form = {
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "code_challenge": challenge(),
        "code_challenge_method": "S256",
        "client_assertion_type": ASSERTION_TYPE,
    }
    par = server.settings.public_origin + "/par"
    assertion = _assertion(key, registered.client_id, par)
    with server.client() as http:
        pushed = http.post("/par", data={**form, "client_assertion": assertion})
        replayed = http.post("/par", data={**form, "client_assertion": assertion})
        other = http.post(
            "/par",
            data={
                **form,
                "client_assertion": _assertion(key, registered.client_id, "https://x.example"),
            },
        )
    assert pushed.status_code == 201, pushed.text
    assert replayed.status_code == other.status_code == 401
    assert replayed.json()["error"] == other.json()["error"] == "invalid_client"


class ShortPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """Authlib's ``PrivateKeyJWT`` with 5-minute assertions, as
    docs/integrations/python-authlib.md shows (Authlib's default is one hour)."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(
            private_key_jwt_sign(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=self.alg,
                expires_in=300,
            )
        )


def test_authlibs_private_key_jwt_client(server: LiveServer, smtp: SmtpCapture) -> None:
    """Authlib's own client (it puts the token endpoint URL in ``aud``): its default
    one-hour assertion is refused as too long-lived; five minutes work."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    registered = register_client(server, auth_method="private_key_jwt", jwks=_jwks(key))
    with server.client() as http:
        token_endpoint = http.get("/.well-known/openid-configuration").json()["token_endpoint"]
    browser = signed_in_browser(server, smtp, "ami@example.com")
    try:
        for auth, accepted in (
            (PrivateKeyJWT(token_endpoint, alg="ES256"), False),
            (ShortPrivateKeyJWT(token_endpoint, alg="ES256"), True),
        ):
            rp = OAuth2Session(
                client_id=registered.client_id,
                client_secret=key,
                token_endpoint_auth_method=auth,
                scope="openid email",
                redirect_uri=REDIRECT_URI,
                code_challenge_method="S256",
            )
            verifier = generate_token(64)
            url, _state = rp.create_authorization_url(
                server.url + "/authorize", code_verifier=verifier, nonce="n-authlib"
            )
            callback = browser.http.get(url).headers["location"]
            if not accepted:
                with pytest.raises(OAuthError, match="invalid_client"):
                    rp.fetch_token(
                        token_endpoint, authorization_response=callback, code_verifier=verifier
                    )
                continue
            token = rp.fetch_token(
                token_endpoint, authorization_response=callback, code_verifier=verifier
            )
            claims = verify_id_token(server, token["id_token"], client_id=registered.client_id)
            assert claims["nonce"] == "n-authlib"
    finally:
        browser.close()
    assert _refusal_reasons(server) == ["lifetime"]


def _client_reads(server: LiveServer) -> list[str]:
    """Every statement the server runs that reads ``oidc_clients``, from now on (prepared
    ones too: they are watched on the driver)."""
    engine = server.app.state.oidc.database.engine
    return driver_statements(engine, naming=("FROM oidc_clients",))


def test_a_token_request_reads_its_client_once(server: LiveServer) -> None:
    """The client is read once, in the request's transaction, whatever its method."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    registered = register_client(server, auth_method="private_key_jwt", jwks=_jwks(key))
    reads = _client_reads(server)
    signed = _assertion(key, registered.client_id, server.settings.public_origin)
    assert _outcome(_token(server, signed)) == AUTHENTICATED
    assert len(reads) == 1
