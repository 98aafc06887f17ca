"""Password hashes: argon2id for everything Sekisho writes, verifiers for what it imports.

Invariants (OWASP Password Storage, SECURITY.md cases 23-25):
- new hashes are argon2id with m = 19 MiB, t = 2, p = 1 (argon2-cffi);
- legacy formats are verified with their own well-kept libraries (bcrypt, argon2-cffi,
  libpass for Django/passlib PBKDF2, scrypt and SHA-crypt); ASP.NET Core Identity's
  formats, for which no Python library exists, are parsed here and checked with the
  standard library's PBKDF2 and a constant-time comparison;
- an unknown format is refused at import (:func:`scheme_of` returns None), never
  stored as-is;
- a password is never truncated, except when checking a legacy bcrypt hash, which
  only ever saw the first 72 bytes; the argon2id rehash then covers all of it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Callable
from functools import cache

import bcrypt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from passlib.hash import (
    django_pbkdf2_sha256,
    pbkdf2_sha256,
    scrypt,
    sha256_crypt,
    sha512_crypt,
)

MAX_PASSWORD_BYTES = 1024
BCRYPT_MAX_BYTES = 72

ARGON2 = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)

_ASPNET_V2_ITERATIONS = 1000
_ASPNET_PRFS = {0: "sha1", 1: "sha256", 2: "sha512"}


def hash_password(password: str) -> str:
    """A new argon2id hash (the only format Sekisho writes)."""
    return ARGON2.hash(password)


def needs_rehash(stored: str) -> bool:
    """True for any legacy format, or argon2id with other parameters than ours (stronger
    ones too: every stored hash converges on the one configured cost)."""
    if scheme_of(stored) != "argon2id":
        return True
    return ARGON2.check_needs_rehash(stored)


def _argon2(stored: str, password: str) -> bool:
    try:
        return ARGON2.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _bcrypt(stored: str, password: str) -> bool:
    candidate = password.encode()[:BCRYPT_MAX_BYTES]
    normalised = stored.encode()
    if normalised.startswith(b"$2y$"):
        normalised = b"$2b$" + normalised[4:]
    try:
        return bcrypt.checkpw(candidate, normalised)
    except ValueError:
        return False


def _aspnet(stored: str, password: str) -> bool:
    """ASP.NET Core Identity PasswordHasher: v2 (0x00, PBKDF2-HMAC-SHA1, 1000 iterations,
    16-byte salt, 32-byte subkey) and v3 (0x01, then big-endian uint32 PRF, iteration
    count and salt length, the salt, and the subkey)."""
    try:
        blob = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(blob) == 1 + 16 + 32 and blob[0] == 0x00:
        salt, subkey = blob[1:17], blob[17:]
        derived = hashlib.pbkdf2_hmac(
            "sha1", password.encode(), salt, _ASPNET_V2_ITERATIONS, len(subkey)
        )
        return hmac.compare_digest(derived, subkey)
    if len(blob) >= 13 and blob[0] == 0x01:
        prf, iterations, salt_length = struct.unpack(">III", blob[1:13])
        if (
            prf not in _ASPNET_PRFS
            or salt_length < 16
            or iterations < 1
            or len(blob) < 13 + salt_length + 16
        ):
            return False
        salt, subkey = blob[13 : 13 + salt_length], blob[13 + salt_length :]
        derived = hashlib.pbkdf2_hmac(
            _ASPNET_PRFS[prf], password.encode(), salt, iterations, len(subkey)
        )
        return hmac.compare_digest(derived, subkey)
    return False


def _passlib(handler: object) -> Callable[[str, str], bool]:
    def verify(stored: str, password: str) -> bool:
        try:
            return bool(handler.verify(password, stored))  # type: ignore[attr-defined]
        except (ValueError, TypeError):
            return False

    return verify


_VERIFIERS: dict[str, Callable[[str, str], bool]] = {
    "argon2id": _argon2,
    "argon2i": _argon2,
    "bcrypt": _bcrypt,
    "aspnet-identity-v2": _aspnet,
    "aspnet-identity-v3": _aspnet,
    "django-pbkdf2-sha256": _passlib(django_pbkdf2_sha256),
    "passlib-pbkdf2-sha256": _passlib(pbkdf2_sha256),
    "scrypt": _passlib(scrypt),
    "sha256-crypt": _passlib(sha256_crypt),
    "sha512-crypt": _passlib(sha512_crypt),
}


def scheme_of(stored: str) -> str | None:
    """The format of a stored hash, or None when Sekisho cannot verify it."""
    if not stored or len(stored) > 1024 or not stored.isascii():
        return None
    prefixes = {
        "$argon2id$": "argon2id",
        "$argon2i$": "argon2i",
        "$2a$": "bcrypt",
        "$2b$": "bcrypt",
        "$2y$": "bcrypt",
        "pbkdf2_sha256$": "django-pbkdf2-sha256",
        "$pbkdf2-sha256$": "passlib-pbkdf2-sha256",
        "$scrypt$": "scrypt",
        "$5$": "sha256-crypt",
        "$6$": "sha512-crypt",
    }
    for prefix, scheme in prefixes.items():
        if stored.startswith(prefix):
            return scheme
    try:
        blob = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(blob) == 49 and blob[0] == 0x00:
        return "aspnet-identity-v2"
    if len(blob) >= 13 + 16 + 16 and blob[0] == 0x01:
        return "aspnet-identity-v3"
    return None


def verify_password(stored: str, password: str) -> bool:
    """Constant-time check of ``password`` against a stored hash of any known format."""
    scheme = scheme_of(stored)
    if scheme is None:
        return False
    return _VERIFIERS[scheme](stored, password)


@cache
def _dummy_hash() -> str:
    return hash_password("sekisho-dummy-password-for-unknown-accounts")


def burn_time(password: str) -> None:
    """Spend one argon2id verification for an unknown account (SECURITY.md case 24)."""
    _argon2(_dummy_hash(), password)
