"""ID tokens (OIDC Core §2, §3.1.3.6) and JWT access tokens (RFC 9068), signed with
joserfc.

The claims come from the grant, which froze the session's facts (``auth_time``, ``amr``,
``acr``) when the person authorized the client; ``sub`` and ``sid`` are the subject and
session the client knows (``oidc/subjects.py``: Sekisho's ids, or pairwise).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from sekisho.core.encoding import base64url
from sekisho.oidc.records import Client, Grant, SigningKey
from sekisho.oidc.signing_keys import ALGORITHM, PrivateKey

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068 §2.1 media type)


@dataclass(frozen=True, slots=True)
class UserFacts:
    email: str
    email_verified: bool
    name: str | None


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _half_hash(value: str) -> str:
    """OIDC Core §3.3.2.11 ``at_hash``: the left half of SHA-256, base64url."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64url(digest[: len(digest) // 2])


def scoped_claims(scope: tuple[str, ...], user: UserFacts) -> dict[str, Any]:
    """Claims released by scope (OIDC Core §5.4)."""
    claims: dict[str, Any] = {}
    if "email" in scope:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    if "profile" in scope and user.name:
        claims["name"] = user.name
    return claims


def id_token(
    *,
    issuer: str,
    client: Client,
    grant: Grant,
    subject: str,
    sid: str,
    user: UserFacts,
    access_token: str,
    key: SigningKey,
    private: PrivateKey,
    now: datetime,
) -> str:
    """Signed with ``key``, whose algorithm is the client's ``id_token_signed_response_alg``
    (PS256 is outside joserfc's recommended set, so the algorithm is allowed by name)."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": client.id,
        "azp": client.id,
        "exp": _epoch(now + client.id_token_lifetime),
        "iat": _epoch(now),
        "auth_time": _epoch(grant.auth_time),
        "acr": grant.acr,
        "amr": list(grant.amr),
        "sid": sid,
        "at_hash": _half_hash(access_token),
        **scoped_claims(grant.scope, user),
    }
    if grant.nonce is not None:
        claims["nonce"] = grant.nonce
    return jwt.encode(
        {"alg": key.alg, "kid": key.kid, "typ": "JWT"}, claims, private, algorithms=[key.alg]
    )


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    jti: str
    expires_at: datetime


def access_token(
    *,
    issuer: str,
    client: Client,
    grant: Grant,
    subject: str,
    key: SigningKey,
    private: PrivateKey,
    now: datetime,
    claims: dict[str, Any] | None = None,
) -> AccessToken:
    """RFC 9068 §2.2: the audience is this provider's UserInfo resource (the issuer);
    ``claims`` adds to the registered ones, never replaces them."""
    extra = dict(claims or {})
    jti = secrets.token_urlsafe(24)
    expires_at = now + client.access_token_lifetime
    claims = {
        **extra,
        "iss": issuer,
        "sub": subject,
        "aud": issuer,
        "client_id": client.id,
        "exp": _epoch(expires_at),
        "iat": _epoch(now),
        "jti": jti,
        "scope": " ".join(grant.scope),
        "auth_time": _epoch(grant.auth_time),
        "acr": grant.acr,
        "amr": list(grant.amr),
    }
    value = jwt.encode(
        {"alg": ALGORITHM, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}, claims, private
    )
    return AccessToken(value=value, jti=jti, expires_at=expires_at)


@functools.lru_cache(maxsize=64)
def _verifying_key(jwk: tuple[tuple[str, str], ...]) -> ECKey:
    """A published ES256 public key, imported once per process (building the key object
    costs more than checking a signature with it). The cache key is the whole public JWK,
    so whatever the table holds is what verifies; a key that leaves the JWKS is no
    longer asked for."""
    return ECKey.import_key(dict(jwk))


def access_token_claims(
    value: str, *, issuer: str, published: list[SigningKey], now: datetime
) -> dict[str, Any] | None:
    """The claims of an access token this provider signed, for this audience, unexpired
    and with a ``jti`` (RFC 9068 §4); None for anything else. Access tokens are always
    ES256. Whether it was revoked is the caller's question (the token record)."""
    key_set = KeySet(
        [
            _verifying_key(tuple(sorted(key.public_jwk.items())))
            for key in published
            if key.alg == ALGORITHM
        ]
    )
    try:
        token = jwt.decode(value, key_set, algorithms=[ALGORITHM])
    except (JoseError, ValueError):
        return None
    if token.header.get("typ") != ACCESS_TOKEN_TYPE:
        return None
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=_epoch(now),
        leeway=0,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": issuer},
        exp={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError:
        return None
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("scope", ""), str):
        return None
    return dict(claims)
