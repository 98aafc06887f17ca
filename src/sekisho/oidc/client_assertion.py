"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3; OIDC Core §9;
RFC 9126 §2 for the pushed authorization request endpoint).

The client signs a short JWT with a key of the JWK Set registered for it; joserfc
checks the signature against that set only, with ES256, RS256 or PS256 (never ``none``
or an HMAC: a public key is not a shared secret). The claims: ``iss`` and ``sub`` the
client id, ``aud`` this provider, ``exp`` present and at most :data:`MAX_LIFETIME`
ahead, ``jti`` present. The caller spends the ``jti`` (stored until ``exp``), so an
assertion authenticates once.

Audience: every ``aud`` value must name this provider: its issuer identifier (what we
recommend, and the only value immune to the audience-injection attacks of 2025 when a
client talks to several servers), or the URL of the endpoint that RFC 9126 §2 and OIDC
Core §9 allow (the token endpoint; at the PAR endpoint also its own URL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, KeySetSerialization, RSAKey
from joserfc.util import base64_to_int

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("ES256", "RS256", "PS256")
MAX_LIFETIME = timedelta(minutes=5)
LEEWAY = timedelta(seconds=30)
MAX_KEYS = 10
MAX_JTI = 256
MIN_RSA_BITS = 2048


class AssertionRefused(Exception):
    """The assertion does not authenticate the client; ``reason`` is for the audit log
    only (the client always reads ``invalid_client``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Assertion:
    jti: str
    expires_at: datetime


def check_jwks(value: object) -> dict[str, Any]:
    """A registrable JWK Set: 1 to 10 public EC (P-256) or RSA (>= 2048 bits) signing
    keys. Raises :class:`ValueError` saying what is wrong."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise ValueError('the JWKS is a JSON object with a "keys" array')
    if not 0 < len(value["keys"]) <= MAX_KEYS:
        raise ValueError(f"the JWKS holds 1 to {MAX_KEYS} keys")
    for jwk in value["keys"]:
        _refuse_short_rsa(jwk)
    try:
        key_set = KeySet.import_key_set(cast(KeySetSerialization, value))
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise ValueError(f"the JWKS cannot be read: {error}") from error
    for key in key_set.keys:
        if not isinstance(key, ECKey | RSAKey):
            raise ValueError("only EC (P-256) and RSA keys are accepted")
        if key.is_private:
            raise ValueError("the JWKS holds a private key: register only the public keys")
        if isinstance(key, ECKey) and key.curve_name != "P-256":
            raise ValueError("EC keys must be on P-256 (ES256)")
        if key.alg is not None and key.alg not in ALGORITHMS:
            raise ValueError(f"a key's alg must be one of {', '.join(ALGORITHMS)}")
    return {"keys": [key.as_dict(private=False) for key in key_set.keys]}


def _refuse_short_rsa(jwk: object) -> None:
    """Checked before joserfc imports the key (it would warn, not refuse)."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
        return
    modulus = jwk.get("n")
    try:
        bits = base64_to_int(modulus).bit_length() if isinstance(modulus, str) else 0
    except ValueError:
        bits = 0
    if bits < MIN_RSA_BITS:
        raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")


def subject(assertion: str) -> str | None:
    """The client id an assertion claims to come from (its ``sub``), read before any
    check, only to find the client whose keys will verify it."""
    try:
        payload = json.loads(jws.extract_compact(assertion.encode("ascii")).payload)
    except (JoseError, ValueError, UnicodeError, RecursionError):  # RecursionError: deep JSON
        return None
    sub = payload.get("sub") if isinstance(payload, dict) else None
    return sub if isinstance(sub, str) and 0 < len(sub) <= 64 else None


def key_id(assertion: str) -> str | None:
    """The ``kid`` an assertion's header names, read before any check, only to know
    whether a client's fetched key set holds it (oidc/remote_jwks.py)."""
    try:
        kid = jws.extract_compact(assertion.encode("ascii")).headers().get("kid")
    except (JoseError, ValueError, UnicodeError):
        return None
    return kid if isinstance(kid, str) and 0 < len(kid) <= 200 else None


def _decode(assertion: str, keys: KeySet) -> jwt.Token:
    """The assertion verified by a key of ``keys``. ``kid`` is optional (RFC 7515
    §4.1.4) and some clients send none (Authlib's ``PrivateKeyJWT``): without it, each
    registered key is tried in turn (at most :data:`MAX_KEYS`), so that a client whose
    set holds two keys, as during a rotation, still authenticates with either."""
    if key_id(assertion) is not None or len(keys.keys) == 1:
        return jwt.decode(assertion, keys, algorithms=list(ALGORITHMS))
    refusal: JoseError | ValueError | None = None
    for key in keys.keys:
        try:
            return jwt.decode(assertion, key, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as error:
            refusal = error
    raise refusal if refusal is not None else ValueError("no key")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def verify(
    assertion: str,
    *,
    client_id: str,
    jwks: dict[str, Any] | None,
    audiences: tuple[str, ...],
    now: datetime,
) -> Assertion:
    """The checked assertion of ``client_id``, or :class:`AssertionRefused`."""
    if not jwks:
        raise AssertionRefused("no_registered_keys")
    try:
        keys = KeySet.import_key_set(cast(KeySetSerialization, jwks))
        token = _decode(assertion, keys)
    except (JoseError, ValueError, UnicodeError) as error:
        raise AssertionRefused(f"signature:{getattr(error, 'error', 'invalid')}") from error
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=_epoch(now),
        leeway=int(LEEWAY.total_seconds()),
        iss={"essential": True, "value": client_id},
        sub={"essential": True, "value": client_id},
        exp={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as error:
        raise AssertionRefused(f"claims:{error.error}") from error
    audience = claims.get("aud")
    named = [audience] if isinstance(audience, str) else audience
    if (
        not isinstance(named, list)
        or not named
        or not all(isinstance(value, str) and value in audiences for value in named)
    ):
        raise AssertionRefused("audience")
    exp = claims["exp"]
    if not isinstance(exp, int) or exp > _epoch(now + MAX_LIFETIME + LEEWAY):
        raise AssertionRefused("lifetime")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
        raise AssertionRefused("jti")
    return Assertion(jti=jti, expires_at=datetime.fromtimestamp(exp, UTC))
