"""``private_key_jwt`` assertions and registrable JWK Sets (RFC 7523 §3), checked with
the clock pinned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from sekisho.oidc.client_assertion import AssertionRefused, check_jwks, subject, verify

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
ISSUER = "https://id.example"
AUDIENCES = (ISSUER, ISSUER + "/token")
KEY = ECKey.generate_key("P-256", auto_kid=True)
JWKS = {"keys": [KEY.as_dict(private=False)]}


def _signed(key: Any = KEY, alg: str = "ES256", **claims: Any) -> str:
    body = {
        "iss": "rp",
        "sub": "rp",
        "aud": ISSUER,
        "exp": int((NOW + timedelta(minutes=1)).timestamp()),
        "jti": "j1",
        **claims,
    }
    return jwt.encode(
        {"alg": alg}, {k: v for k, v in body.items() if v is not None}, key, algorithms=[alg]
    )


def _verify(assertion: str) -> str:
    return verify(assertion, client_id="rp", jwks=JWKS, audiences=AUDIENCES, now=NOW).jti


def test_a_good_assertion_gives_its_jti_and_expiry() -> None:
    checked = verify(_signed(), client_id="rp", jwks=JWKS, audiences=AUDIENCES, now=NOW)
    assert checked.jti == "j1"
    assert checked.expires_at == NOW + timedelta(minutes=1)
    assert subject(_signed()) == "rp"
    assert subject("x.y.z") is None


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://other.example"}, "audience"),
        ({"aud": [ISSUER, "https://other.example"]}, "audience"),
        ({"aud": None}, "audience"),
        ({"exp": int((NOW - timedelta(minutes=1)).timestamp())}, "claims:expired_token"),
        ({"exp": None}, "claims:missing_claim"),
        ({"exp": int((NOW + timedelta(minutes=10)).timestamp())}, "lifetime"),
        ({"jti": None}, "claims:missing_claim"),
        ({"iss": "other"}, "claims:invalid_claim"),
        ({"sub": "other"}, "claims:invalid_claim"),
    ],
)
def test_bad_claims_are_refused(claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(AssertionRefused) as refused:
        _verify(_signed(**claims))
    assert refused.value.reason == reason


def test_only_the_registered_keys_and_algorithms_verify() -> None:
    for assertion in (
        _signed(key=ECKey.generate_key("P-256")),
        _signed(key=OctKey.import_key("s" * 32), alg="HS256"),
    ):
        with pytest.raises(AssertionRefused) as refused:
            _verify(assertion)
        assert refused.value.reason.startswith("signature:")
    with pytest.raises(AssertionRefused):
        verify(_signed(), client_id="rp", jwks=None, audiences=AUDIENCES, now=NOW)


def test_registrable_jwks() -> None:
    rsa = RSAKey.generate_key(2048)
    assert check_jwks({"keys": [rsa.as_dict(private=False)]})["keys"][0]["kty"] == "RSA"
    for bad, says in (
        ({"keys": [KEY.as_dict(private=True)]}, "private"),
        ({"keys": []}, "1 to 10"),
        ([], "keys"),
        ({"keys": [OctKey.import_key("s" * 32).as_dict()]}, "EC"),
        ({"keys": [ECKey.generate_key("P-384").as_dict(private=False)]}, "P-256"),
        ({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}, "2048"),
    ):
        with pytest.raises(ValueError, match=says):
            check_jwks(bad)
