"""The reference app's OpenID Connect endpoints: only the essential work of Sekisho's.

- ``GET /authorize`` for a signed-in person and a first-party client: the session by the
  keyed hash of its cookie, the client and its exact redirect URI, PKCE S256 required;
  one grant row, one code row (keyed hash, 60 s), one audit row; a 303 to the client.
- ``POST /token``, ``authorization_code``: ``client_secret_basic`` checked against the
  client's keyed hash; the code spent by one ``UPDATE ... RETURNING`` (single use, atomic),
  its client, redirect URI and PKCE verifier checked, the grant and its session read;
  an ES256 access token (RFC 9068 claims) and ID token signed with joserfc, the access
  token's ``jti`` row, a refresh token row (keyed hash) and an audit row, one commit.
- ``POST /token``, ``refresh_token``: the same client check; the refresh token spent by
  one ``UPDATE ... RETURNING`` (rotation), the grant and session re-checked, both tokens
  signed again, a new refresh token row, the access token row, an audit row.
- ``GET /userinfo``: the access token's signature and claims checked with joserfc, its
  ``jti`` row joined to a live grant and session, the user's claims.

The signing key is made at start and kept in memory, as Sekisho keeps its opened keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from benchmarks.reference_app import Reference

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, secret TEXT NOT NULL,"
    " redirect_uri TEXT NOT NULL, scope TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS grants (id TEXT PRIMARY KEY, client_id TEXT NOT NULL,"
    " user_id TEXT NOT NULL, session_id TEXT NOT NULL, scope TEXT NOT NULL, nonce TEXT,"
    " auth_time DOUBLE PRECISION NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS codes (digest TEXT PRIMARY KEY, grant_id TEXT NOT NULL,"
    " client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, challenge TEXT NOT NULL,"
    " expires_at DOUBLE PRECISION NOT NULL, used INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS access_tokens (jti TEXT PRIMARY KEY, grant_id TEXT NOT NULL,"
    " expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS refresh_tokens (digest TEXT PRIMARY KEY,"
    " grant_id TEXT NOT NULL, client_id TEXT NOT NULL, used_at DOUBLE PRECISION,"
    " expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sessions_token ON sessions (token)",
)
CODE_TTL = 60.0
TOKEN_TTL = 3600
ALG = "ES256"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class Signer:
    """One ES256 key, to sign with and to verify access tokens; derived from the shared
    secret, so that every worker process holds the same key."""

    def __init__(self, secret: bytes) -> None:
        scalar = int.from_bytes(hashlib.sha256(secret + b"es256").digest(), "big")
        private = ec.derive_private_key(scalar % (P256_ORDER - 1) + 1, ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.key = ECKey.import_key(pem, parameters={"alg": ALG})
        self.kid = self.key.thumbprint()
        self.public = KeySet([ECKey.import_key(self.key.as_dict(private=False))])

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        return jwt.encode({"alg": ALG, "kid": self.kid, "typ": typ}, claims, self.key)


def _invalid(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status, headers=NO_STORE)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def authorize(request: Request) -> Response:
    ref: Reference = request.app.state.ref
    params = request.query_params
    store = ref.store
    now = time.time()
    try:
        client = store.run(
            "SELECT redirect_uri, scope FROM clients WHERE id = ?", (params.get("client_id", ""),)
        )
        scope = params.get("scope", "").split()
        if (
            not client
            or params.get("redirect_uri") != client[0][0]
            or params.get("response_type") != "code"
            or params.get("code_challenge_method") != "S256"
            or len(params.get("code_challenge", "")) != 43
            or "openid" not in scope
            or not set(scope) <= set(client[0][1].split())
        ):
            store.rollback()
            return _invalid("invalid_request")
        session = store.run(
            "SELECT id, user_id FROM sessions WHERE token = ? AND expires_at > ?",
            (ref.digest("session", request.cookies.get("session", "")), now),
        )
        if not session:
            store.rollback()
            return _invalid("login_required")
        session_id, user_id = session[0]
        grant_id = secrets.token_urlsafe(16)
        store.run(
            "INSERT INTO grants VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
            (
                grant_id,
                params["client_id"],
                user_id,
                session_id,
                " ".join(scope),
                params.get("nonce"),
                now,
            ),
        )
        code = secrets.token_urlsafe(32)
        store.run(
            "INSERT INTO codes VALUES (?, ?, ?, ?, ?, ?, 0)",
            (
                ref.digest("code", code),
                grant_id,
                params["client_id"],
                client[0][0],
                params["code_challenge"],
                now + CODE_TTL,
            ),
        )
        ref.audit("oidc.authorization.granted", user_id, now)
        store.commit()
    except BaseException:
        store.rollback()
        raise
    answer = {"code": code, "iss": ref.origin}
    if "state" in params:
        answer["state"] = params["state"]
    return RedirectResponse(f"{client[0][0]}?{urlencode(answer)}", status_code=303)


def basic_client(ref: Reference, authorization: str, *, reading: bool = False) -> str | None:
    """``client_secret_basic`` (RFC 6749 §2.3.1): the client whose keyed secret hash
    matches, or None. ``reading``: outside any write transaction."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    client_id, secret = unquote(client_id), unquote(secret)
    lookup = ref.store.read if reading else ref.store.run
    stored = lookup("SELECT secret FROM clients WHERE id = ?", (client_id,))
    presented = ref.digest("client", f"{client_id}:{secret}")
    if not stored or not hmac.compare_digest(stored[0][0], presented):
        return None
    return client_id


def _tokens(
    ref: Reference, client_id: str, grant: tuple[Any, ...], grant_id: str, now: float
) -> dict[str, Any]:
    """Access and ID token, the access token's row and the refresh token's row; ``grant``
    is (user_id, session_id, scope, nonce, auth_time, email, session expiry)."""
    user_id, session_id, scope, nonce, auth_time, email, session_ends = grant
    jti = secrets.token_urlsafe(24)
    common = {
        "iss": ref.origin,
        "sub": user_id,
        "iat": int(now),
        "exp": int(now) + TOKEN_TTL,
        "auth_time": int(auth_time),
        "acr": "urn:sekisho:aal1",
        "amr": ["otp"],
    }
    access = ref.signer.sign(
        {**common, "aud": ref.origin, "client_id": client_id, "jti": jti, "scope": scope},
        "at+jwt",
    )
    at_hash = hashlib.sha256(access.encode()).digest()[:16]
    id_claims = {
        **common,
        "aud": client_id,
        "azp": client_id,
        "sid": session_id,
        "at_hash": base64.urlsafe_b64encode(at_hash).rstrip(b"=").decode(),
        "email": email,
        "email_verified": True,
    }
    if nonce is not None:
        id_claims["nonce"] = nonce
    id_token = ref.signer.sign(id_claims, "JWT")
    ref.store.run("INSERT INTO access_tokens VALUES (?, ?, ?)", (jti, grant_id, now + TOKEN_TTL))
    refresh = secrets.token_urlsafe(32)
    ref.store.run(
        "INSERT INTO refresh_tokens VALUES (?, ?, ?, NULL, ?)",
        (ref.digest("refresh", refresh), grant_id, client_id, session_ends),
    )
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": TOKEN_TTL,
        "id_token": id_token,
        "refresh_token": refresh,
        "scope": scope,
    }


_GRANT = (
    "SELECT g.user_id, g.session_id, g.scope, g.nonce, g.auth_time, u.email, s.expires_at"
    " FROM grants g JOIN sessions s ON s.id = g.session_id JOIN users u ON u.id = g.user_id"
    " WHERE g.id = ? AND g.revoked = 0 AND s.expires_at > ?"
)


async def token(request: Request) -> Response:
    ref: Reference = request.app.state.ref
    form = await request.form()
    fields = {name: str(form[name]) for name in form}
    store = ref.store
    now = time.time()
    try:
        client_id = basic_client(ref, request.headers.get("authorization", ""))
        if client_id is None:
            store.rollback()
            return _invalid("invalid_client", 401)
        spent = _spend(ref, client_id, fields, now)
        grant = store.run(_GRANT, (spent[0], now)) if spent else []
        if spent is None or not grant:
            store.rollback()
            return _invalid("invalid_grant")
        grant_id, event = spent
        facts = grant[0]
        if event == "oidc.token.refreshed":
            facts = (*facts[:3], None, *facts[4:])  # no nonce in a refreshed ID token
        body = _tokens(ref, client_id, facts, grant_id, now)
        ref.audit(event, None, now)
        store.commit()
    except BaseException:
        store.rollback()
        raise
    return JSONResponse(body, headers=NO_STORE)


def _spend(
    ref: Reference, client_id: str, fields: dict[str, str], now: float
) -> tuple[str, str] | None:
    """Spend the code or refresh token (one ``UPDATE ... RETURNING``: single use) and
    check the code's bindings; the grant it belongs to and the audit event to write."""
    if fields.get("grant_type") == "authorization_code":
        code = ref.store.run(
            "UPDATE codes SET used = 1 WHERE digest = ? AND used = 0 AND expires_at > ?"
            " RETURNING grant_id, client_id, redirect_uri, challenge",
            (ref.digest("code", fields.get("code", "")), now),
        )
        if (
            not code
            or code[0][1] != client_id
            or code[0][2] != fields.get("redirect_uri")
            or not hmac.compare_digest(_s256(fields.get("code_verifier", "")), code[0][3])
        ):
            return None
        return code[0][0], "oidc.token.issued"
    if fields.get("grant_type") == "refresh_token":
        refresh = ref.store.run(
            "UPDATE refresh_tokens SET used_at = ? WHERE digest = ? AND client_id = ?"
            " AND used_at IS NULL AND expires_at > ? RETURNING grant_id",
            (now, ref.digest("refresh", fields.get("refresh_token", "")), client_id, now),
        )
        return (refresh[0][0], "oidc.token.refreshed") if refresh else None
    return None


def access_claims(ref: Reference, request: Request, now: float) -> dict[str, Any] | None:
    """The claims of the request's Bearer access token (RFC 6750) if its ES256 signature,
    ``typ`` ``at+jwt`` and RFC 9068 claims check out; None otherwise."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        decoded = jwt.decode(value.strip(), ref.signer.public, algorithms=[ALG])
        if decoded.header.get("typ") != "at+jwt":
            return None
        jwt.JWTClaimsRegistry(
            now=int(now),
            leeway=0,
            iss={"essential": True, "value": ref.origin},
            aud={"essential": True, "value": ref.origin},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError):
        return None
    return decoded.claims


async def userinfo(request: Request) -> Response:
    ref: Reference = request.app.state.ref
    refused = Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    now = time.time()
    claims = access_claims(ref, request, now)
    if claims is None:
        return refused
    store = ref.store
    try:
        found = store.read(
            "SELECT g.user_id, g.scope, u.email FROM access_tokens a"
            " JOIN grants g ON g.id = a.grant_id JOIN sessions s ON s.id = g.session_id"
            " JOIN users u ON u.id = g.user_id"
            " WHERE a.jti = ? AND a.expires_at > ? AND g.revoked = 0 AND s.expires_at > ?",
            (claims["jti"], now, now),
        )
    finally:
        store.rollback()
    if not found:
        return refused
    user_id, scope, email = found[0]
    answer: dict[str, Any] = {"sub": user_id}
    if "email" in claims.get("scope", "").split() and "email" in scope.split():
        answer.update(email=email, email_verified=True)
    return JSONResponse(answer)


async def add_client(request: Request) -> JSONResponse:
    """Benchmark set-up only: a confidential client and its keyed secret hash."""
    ref: Reference = request.app.state.ref
    body = json.loads(await request.body())
    ref.store.run(
        "INSERT INTO clients VALUES (?, ?, ?, ?)",
        (
            body["client_id"],
            ref.digest("client", f"{body['client_id']}:{body['secret']}"),
            body["redirect_uri"],
            body["scope"],
        ),
    )
    ref.store.commit()
    return JSONResponse({"id": body["client_id"]})
