"""Keys derived from the one server secret, one per purpose (HKDF, RFC 5869).

Invariant: every one-time secret, session token and binding value is stored only as a
keyed hash (HMAC-SHA256) under a purpose-specific key, so a digest made for one
purpose never matches in another (SECURITY.md case 6).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(secret: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sekisho", info=label.encode()).derive(
        secret
    )


class Keyring:
    """Purpose-bound keyed hashing and authenticated encryption from one secret."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._cache: dict[str, bytes] = {}
        self._fernets: dict[str, Fernet] = {}

    def _key(self, purpose: str) -> bytes:
        key = self._cache.get(purpose)
        if key is None:
            key = _derive(self._secret, f"hmac:{purpose}")
            self._cache[purpose] = key
        return key

    def digest(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of ``value`` under the key for ``purpose``, hex encoded."""
        return hmac.new(self._key(purpose), value.encode(), hashlib.sha256).hexdigest()

    def matches(self, purpose: str, value: str, expected_digest: str) -> bool:
        """Constant-time comparison of ``value``'s digest with a stored digest."""
        return hmac.compare_digest(self.digest(purpose, value), expected_digest)

    def fingerprint(self) -> str:
        """A keyed fingerprint of the secret: the HMAC of a fixed label under a key
        derived for this purpose alone. Equal secrets give equal fingerprints; the
        fingerprint reveals nothing about the secret (it is neither the secret nor a plain
        hash of it), so it may rest in the database and appear in messages."""
        return self.digest("deployment-key-fingerprint", "sekisho deployment key")

    def _fernet(self, purpose: str) -> Fernet:
        fernet = self._fernets.get(purpose)
        if fernet is None:
            fernet = Fernet(base64.urlsafe_b64encode(_derive(self._secret, purpose)))
            self._fernets[purpose] = fernet
        return fernet

    def seal(self, plaintext: bytes, *, purpose: str = "outbox-encryption") -> str:
        """Encrypt and authenticate (Fernet) data that must rest in the database, under a
        key derived for ``purpose`` alone (mail in the outbox, OIDC signing keys)."""
        return self._fernet(purpose).encrypt(plaintext).decode()

    def unseal(self, token: str, *, purpose: str = "outbox-encryption") -> bytes:
        return self._fernet(purpose).decrypt(token.encode())
