"""Signing keys and the published JWKS (RFC 7517; OIDC Core §10.1.1 on rotation).

Invariants: private keys rest in the database sealed with a key derived from the server
secret for this purpose alone; a new key is published before it signs (``signs_from``
lies ahead by the rotation delay, so relying parties that cache the JWKS already hold
it), and a retired key stays published until every token it signed has expired.
Each algorithm has its own keys and its own rotation: ES256 (P-256, the default and the
only one for access tokens), RS256 and PS256 (RSA 2048 each, never one RSA key for both
algorithms: a JWK names one ``alg``). Every JWK operation is joserfc's.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from joserfc.jwk import ECKey, KeyParameters, KeySet, RSAKey

from sekisho.core.keys import Keyring
from sekisho.oidc.records import SigningKey
from sekisho.store.oidc import SqlOidc

SEAL_PURPOSE = "oidc-signing-key"
ALGORITHM = "ES256"
"""The default ID token algorithm, and the access tokens' (RFC 9068 §2.1)."""
ALGORITHMS = ("ES256", "RS256", "PS256")
"""Every ``id_token_signed_response_alg`` a client may choose (discovery lists them)."""
RSA_BITS = 2048
PrivateKey = ECKey | RSAKey


def _generate(alg: str) -> PrivateKey:
    parameters: KeyParameters = {"use": "sig", "alg": alg}
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=parameters, auto_kid=True)
    if alg in ("RS256", "PS256"):
        return RSAKey.generate_key(RSA_BITS, parameters=parameters, auto_kid=True)
    raise ValueError(f"unsupported signing algorithm {alg}")


def new_key(
    keys: Keyring, *, now: datetime, signs_from: datetime, alg: str = ALGORITHM
) -> SigningKey:
    """A fresh key pair for ``alg``, its kid the RFC 7638 thumbprint of the public key."""
    pair = _generate(alg)
    private = pair.as_dict(private=True)
    public = {name: str(value) for name, value in pair.as_dict(private=False).items()}
    return SigningKey(
        kid=str(pair.kid),
        alg=alg,
        public_jwk=public,
        sealed_private_jwk=keys.seal(json.dumps(private).encode(), purpose=SEAL_PURPOSE),
        created_at=now,
        signs_from=signs_from,
    )


def ensure_signing_key(
    store: SqlOidc, keys: Keyring, *, now: datetime, alg: str = ALGORITHM
) -> SigningKey | None:
    """For an algorithm without a key that signs now or will, the first one, signing at
    once (no relying party can depend on a key that never signed). Returns the key made,
    if any."""
    if any(key.retired_at is None and key.alg == alg for key in store.signing_keys()):
        return None
    key = new_key(keys, now=now, signs_from=now, alg=alg)
    store.add_key(key)
    return key


@dataclass(frozen=True, slots=True)
class Rotation:
    new: SigningKey
    retired: list[str]
    published_until: datetime


def rotate(
    store: SqlOidc,
    keys: Keyring,
    *,
    now: datetime,
    delay: timedelta,
    token_lifetime: timedelta,
    alg: str = ALGORITHM,
) -> Rotation:
    """Publish a new ``alg`` key that signs from ``now + delay``; that algorithm's keys
    signing now stop then, and stay published for ``token_lifetime`` more (the longest
    any client's tokens live). With no key of ``alg`` in use yet, the new key signs at
    once. Keys of other algorithms are untouched."""
    current = [
        key
        for key in store.signing_keys()
        if key.alg == alg and (key.retired_at is None or key.retired_at > now)
    ]
    switch = now + delay if current else now
    key = new_key(keys, now=now, signs_from=switch, alg=alg)
    store.add_key(key)
    until = switch + token_lifetime
    for old in current:
        store.retire_key(old.kid, at=switch, published_until=until)
    return Rotation(new=key, retired=[old.kid for old in current], published_until=until)


def published(all_keys: list[SigningKey], now: datetime) -> dict[str, list[dict[str, str]]]:
    """The JWKS document: every key not past its publication end (RFC 7517 §5)."""
    return {
        "keys": [
            key.public_jwk
            for key in all_keys
            if key.published_until is None or key.published_until > now
        ]
    }


def public_key_set(keys: list[SigningKey]) -> KeySet:
    """The public halves of ``keys``, EC and RSA alike, as one key set to verify with
    (each JWK names its ``kid`` and ``alg``)."""
    return KeySet.import_key_set({"keys": [dict(key.public_jwk) for key in keys]})


def signing_key(
    all_keys: list[SigningKey], now: datetime, alg: str = ALGORITHM
) -> SigningKey | None:
    """The ``alg`` key that signs now: the newest whose time has come and that is not
    retired."""
    ready = [key for key in all_keys if key.alg == alg and key.state(now) == "signing"]
    return max(ready, key=lambda key: key.signs_from) if ready else None


class PrivateKeys:
    """Unsealed private keys, kept in memory by kid once opened (they never change)."""

    def __init__(self, keys: Keyring) -> None:
        self._keys = keys
        self._opened: dict[str, PrivateKey] = {}
        self._lock = threading.Lock()

    def open(self, key: SigningKey) -> PrivateKey:
        with self._lock:
            opened = self._opened.get(key.kid)
            if opened is None:
                data = json.loads(self._keys.unseal(key.sealed_private_jwk, purpose=SEAL_PURPOSE))
                opened = ECKey.import_key(data) if key.alg == "ES256" else RSAKey.import_key(data)
                self._opened[key.kid] = opened
            return opened
