"""Legacy password hashes: parse, derive, wrap (SECURITY.md cases 23, 24 and 60).

A legacy hash is a *derivation* (the old framework's key derivation function with its
parameters and salt) plus the *key* it derived from the user's password. Sekisho never
keeps the key as the framework stored it: at import it stores
``argon2id(key)`` next to the derivation, as one self-describing string::

    $sekisho-wrap$<scheme>$<name=value,...>$<salt, base64url>$<argon2id hash of the key>

so a leaked database never exposes a fast-to-attack hash (PBKDF2-SHA1 with 1,000
iterations, say), and a check costs the legacy derivation plus one argon2id
verification. Unwrapped legacy hashes (databases filled before wrapping existed) keep
verifying until ``sekisho users wrap-legacy-hashes`` wraps them.

Invariants:
- one parser per format (:func:`parse`) serves both the importer and sign-in, so a hash
  that can never verify is refused at import instead of stored;
- each format is parsed as strictly as its own framework checks it and no stricter
  (a Django salt is any non-empty string without ``$``);
- derivations use the format's own library or :mod:`hashlib` (PBKDF2, scrypt), never a
  hand-written primitive; keys are compared in constant time;
- a password is never truncated, except for bcrypt, which only ever saw 72 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import bcrypt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import hash_secret_raw
from passlib.hash import pbkdf2_sha256, scrypt, sha256_crypt, sha512_crypt

WRAP_PREFIX = "$sekisho-wrap$"
MAX_STORED = 1024
BCRYPT_MAX_BYTES = 72

_ASPNET_V2_ITERATIONS = 1000
_ASPNET_PRFS = {0: "sha1", 1: "sha256", 2: "sha512"}
_PBKDF2_PRFS = frozenset(_ASPNET_PRFS.values())
_MAX_PBKDF2_ITERATIONS = 100_000_000
_MAX_MEMORY_BYTES = 1 << 30
_MAX_KEY_BYTES = MAX_STORED
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_BCRYPT = re.compile(r"\$2[aby]\$([0-9]{2})\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})")
_ARGON2 = re.compile(
    r"\$(argon2id|argon2i)\$(?:v=([0-9]+)\$)?m=([0-9]+),t=([0-9]+),p=([0-9]+)"
    r"\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)"
)
_DIGITS = re.compile(r"[0-9]{1,10}")
_PARAMS = re.compile(r"[a-z]{1,2}=[a-z0-9]{1,10}")

Params = Mapping[str, str]
Check = Callable[[Params, bytes], None]
Derive = Callable[[bytes, bytes, Params], bytes]


class Unusable(ValueError):
    """A stored hash that can never verify any password."""


@dataclass(frozen=True, slots=True)
class Derivation:
    """How a legacy framework derived a key from a password."""

    scheme: str
    params: Params
    salt: bytes

    def derive(self, password: str) -> bytes:
        return _DERIVE[self.scheme](password.encode(), self.salt, self.params)

    def encoded(self) -> str:
        params = ",".join(f"{name}={value}" for name, value in sorted(self.params.items()))
        salt = base64.urlsafe_b64encode(self.salt).decode().rstrip("=")
        return f"{WRAP_PREFIX}{self.scheme}${params}${salt}$"


@dataclass(frozen=True, slots=True)
class LegacyHash:
    """A parsed legacy hash: the derivation, and either the key the framework stored
    (``key``) or Sekisho's argon2id hash of that key (``wrapped``)."""

    derivation: Derivation
    key: bytes | None = None
    wrapped: str | None = None

    @property
    def scheme(self) -> str:
        return self.derivation.scheme

    def verify(self, password: str, hasher: PasswordHasher) -> bool:
        derived = self.derivation.derive(password)
        if self.key is not None:
            return hmac.compare_digest(derived, self.key)
        try:
            return hasher.verify(str(self.wrapped), derived)
        except (VerificationError, InvalidHashError):
            return False

    def wrap(self, hasher: PasswordHasher) -> str:
        """The self-describing wrapped form (for a hash already wrapped: itself)."""
        if self.wrapped is not None:
            return self.derivation.encoded() + self.wrapped
        assert self.key is not None
        stored = self.derivation.encoded() + hasher.hash(self.key)
        if len(stored) > MAX_STORED:
            raise Unusable("its salt is too long to store")
        return stored


def _int(params: Params, name: str, low: int, high: int) -> int:
    value = params.get(name, "")
    if not _DIGITS.fullmatch(value) or not low <= int(value) <= high:
        raise Unusable(f"parameter {name} is out of range")
    return int(value)


def _b64(text: str, *, altchars: bytes = b"+/") -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as error:
        raise Unusable("not valid base64") from error


# -- derivations (the same code checks parameters at import and derives at sign-in) --


def _check_pbkdf2(params: Params, salt: bytes) -> None:
    if params.get("h") not in _PBKDF2_PRFS:
        raise Unusable("unknown PBKDF2 hash function")
    _int(params, "i", 1, _MAX_PBKDF2_ITERATIONS)
    _int(params, "l", 16, _MAX_KEY_BYTES)


def _pbkdf2(password: bytes, salt: bytes, params: Params) -> bytes:
    return hashlib.pbkdf2_hmac(
        params["h"],
        password,
        salt,
        _int(params, "i", 1, _MAX_PBKDF2_ITERATIONS),
        _int(params, "l", 16, _MAX_KEY_BYTES),
    )


def _scrypt_memory(params: Params) -> int:
    n = 1 << _int(params, "ln", 1, 30)
    r, p = _int(params, "r", 1, 1024), _int(params, "p", 1, 1024)
    memory = 128 * r * (n + p + 2)
    if memory > _MAX_MEMORY_BYTES:
        raise Unusable("scrypt parameters need more than 1 GiB")
    return memory


def _check_scrypt(params: Params, salt: bytes) -> None:
    _scrypt_memory(params)
    _int(params, "l", 16, 64)


def _scrypt(password: bytes, salt: bytes, params: Params) -> bytes:
    return hashlib.scrypt(
        password,
        salt=salt,
        n=1 << int(params["ln"]),
        r=int(params["r"]),
        p=int(params["p"]),
        maxmem=_scrypt_memory(params) + (1 << 20),
        dklen=_int(params, "l", 16, 64),
    )


def _check_bcrypt(params: Params, salt: bytes) -> None:
    _int(params, "c", 4, 31)
    text = salt.decode("ascii", "replace")
    if len(text) != 22 or _BCRYPT_ALPHABET.find(text[-1]) % 16 != 0:
        raise Unusable("not a bcrypt salt")
    if any(character not in _BCRYPT_ALPHABET for character in text):
        raise Unusable("not a bcrypt salt")


def _bcrypt(password: bytes, salt: bytes, params: Params) -> bytes:
    config = b"$2b$%02d$%s" % (_int(params, "c", 4, 31), salt)
    return bytes(bcrypt.hashpw(password[:BCRYPT_MAX_BYTES], config)[-31:])


def _sha_crypt(handler: Any) -> tuple[Check, Derive]:
    def check(params: Params, salt: bytes) -> None:
        try:
            handler.using(salt=salt.decode("ascii"), rounds=_int(params, "n", 1000, 999_999_999))
        except (ValueError, TypeError, UnicodeDecodeError) as error:
            raise Unusable("not a SHA-crypt salt") from error

    def derive(password: bytes, salt: bytes, params: Params) -> bytes:
        configured = handler.using(salt=salt.decode("ascii"), rounds=int(params["n"]))
        return str(handler.from_string(configured.hash(password)).checksum).encode()

    return check, derive


_ARGON2_TYPES = {"argon2i": Type.I, "argon2id": Type.ID}


def _check_argon2(params: Params, salt: bytes) -> None:
    if params.get("v") not in ("16", "19") or len(salt) < 8:
        raise Unusable("unsupported argon2 version or salt")
    parallelism = _int(params, "p", 1, 255)
    _int(params, "m", 8 * parallelism, _MAX_MEMORY_BYTES // 1024)
    _int(params, "t", 1, 1000)
    _int(params, "l", 4, _MAX_KEY_BYTES)


def _argon2(scheme: str) -> Derive:
    def derive(password: bytes, salt: bytes, params: Params) -> bytes:
        return hash_secret_raw(
            password,
            salt,
            time_cost=int(params["t"]),
            memory_cost=int(params["m"]),
            parallelism=int(params["p"]),
            hash_len=int(params["l"]),
            type=_ARGON2_TYPES[scheme],
            version=int(params["v"]),
        )

    return derive


_SHA256_CRYPT = _sha_crypt(sha256_crypt)
_SHA512_CRYPT = _sha_crypt(sha512_crypt)

_CHECK: dict[str, Check] = {
    "aspnet-identity-v2": _check_pbkdf2,
    "aspnet-identity-v3": _check_pbkdf2,
    "django-pbkdf2-sha256": _check_pbkdf2,
    "passlib-pbkdf2-sha256": _check_pbkdf2,
    "scrypt": _check_scrypt,
    "bcrypt": _check_bcrypt,
    "sha256-crypt": _SHA256_CRYPT[0],
    "sha512-crypt": _SHA512_CRYPT[0],
    "argon2i": _check_argon2,
    "argon2id": _check_argon2,
}
_DERIVE: dict[str, Derive] = {
    "aspnet-identity-v2": _pbkdf2,
    "aspnet-identity-v3": _pbkdf2,
    "django-pbkdf2-sha256": _pbkdf2,
    "passlib-pbkdf2-sha256": _pbkdf2,
    "scrypt": _scrypt,
    "bcrypt": _bcrypt,
    "sha256-crypt": _SHA256_CRYPT[1],
    "sha512-crypt": _SHA512_CRYPT[1],
    "argon2i": _argon2("argon2i"),
    "argon2id": _argon2("argon2id"),
}


def _legacy(scheme: str, params: dict[str, str], salt: bytes, key: bytes) -> LegacyHash:
    _CHECK[scheme](params, salt)
    return LegacyHash(Derivation(scheme, params, salt), key=key)


# -- parsers, one per format as its framework writes it --------------------------------


def _parse_aspnet(stored: str) -> LegacyHash:
    """ASP.NET Core Identity PasswordHasher: v2 (0x00, PBKDF2-HMAC-SHA1, 1000 iterations,
    16-byte salt, 32-byte subkey) and v3 (0x01, then big-endian uint32 PRF, iteration
    count and salt length, the salt, and the subkey; salt and subkey at least 16 bytes)."""
    blob = _b64(stored)
    if base64.b64encode(blob).decode() != stored:
        raise Unusable("not canonical base64")
    if len(blob) == 1 + 16 + 32 and blob[0] == 0x00:
        params = {"h": "sha1", "i": str(_ASPNET_V2_ITERATIONS), "l": "32"}
        return _legacy("aspnet-identity-v2", params, blob[1:17], blob[17:])
    if len(blob) >= 13 and blob[0] == 0x01:
        prf, iterations, salt_length = struct.unpack(">III", blob[1:13])
        if prf not in _ASPNET_PRFS or salt_length < 16 or len(blob) < 13 + salt_length + 16:
            raise Unusable("not an ASP.NET Core Identity v3 hash")
        salt, subkey = blob[13 : 13 + salt_length], blob[13 + salt_length :]
        params = {"h": _ASPNET_PRFS[prf], "i": str(iterations), "l": str(len(subkey))}
        return _legacy("aspnet-identity-v3", params, salt, subkey)
    raise Unusable("not an ASP.NET Core Identity hash")


def _parse_django(stored: str) -> LegacyHash:
    """Django's ``pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte key>``; the
    salt is any non-empty string without ``$`` (Django's ``_check_encode_args``)."""
    _algorithm, iterations, salt, key = [*stored.split("$", 3), "", "", ""][:4]
    if not salt or not _DIGITS.fullmatch(iterations) or "$" in key:
        raise Unusable("not a Django PBKDF2 hash")
    raw = _b64(key)
    if base64.b64encode(raw).decode() != key or len(raw) != 32:
        raise Unusable("not a Django PBKDF2 hash")
    params = {"h": "sha256", "i": str(int(iterations)), "l": "32"}
    return _legacy("django-pbkdf2-sha256", params, salt.encode(), raw)


def _parse_passlib(handler: Any, scheme: str) -> Callable[[str], LegacyHash]:
    def parse(stored: str) -> LegacyHash:
        try:
            parsed = handler.from_string(stored)
        except (ValueError, TypeError) as error:
            raise Unusable(f"not a {scheme} hash") from error
        if not parsed.checksum:
            raise Unusable(f"not a {scheme} hash")
        if handler is pbkdf2_sha256:
            params = {"h": "sha256", "i": str(parsed.rounds), "l": str(len(parsed.checksum))}
            return _legacy(scheme, params, parsed.salt, parsed.checksum)
        if handler is scrypt:
            params = {
                "ln": str(parsed.rounds),
                "r": str(parsed.block_size),
                "p": str(parsed.parallelism),
                "l": str(len(parsed.checksum)),
            }
            return _legacy(scheme, params, parsed.salt, parsed.checksum)
        params = {"n": str(parsed.rounds)}
        return _legacy(scheme, params, parsed.salt.encode(), parsed.checksum.encode())

    return parse


def _parse_bcrypt(stored: str) -> LegacyHash:
    match = _BCRYPT.fullmatch(stored)
    if match is None or _BCRYPT_ALPHABET.find(match[3][-1]) % 4 != 0:
        raise Unusable("not a bcrypt hash")
    return _legacy("bcrypt", {"c": str(int(match[1]))}, match[2].encode(), match[3].encode())


def _parse_argon2(stored: str) -> LegacyHash:
    match = _ARGON2.fullmatch(stored)
    if match is None:
        raise Unusable("not an argon2 hash")
    key = _b64(match[7])
    params = {
        "v": match[2] or "16",
        "m": match[3],
        "t": match[4],
        "p": match[5],
        "l": str(len(key)),
    }
    return _legacy(match[1], params, _b64(match[6]), key)


def _parse_wrapped(stored: str) -> LegacyHash:
    scheme, encoded, salt, wrapped = [*stored[len(WRAP_PREFIX) :].split("$", 3), "", "", ""][:4]
    pairs = encoded.split(",")
    if scheme not in _CHECK or not all(_PARAMS.fullmatch(pair) for pair in pairs):
        raise Unusable("not a wrapped hash")
    if not wrapped.startswith("$argon2id$"):
        raise Unusable("not a wrapped hash")
    params = dict(pair.split("=", 1) for pair in pairs)
    raw_salt = _b64(salt, altchars=b"-_")
    _CHECK[scheme](params, raw_salt)
    return LegacyHash(Derivation(scheme, params, raw_salt), wrapped=wrapped)


_PREFIXES: tuple[tuple[str, Callable[[str], LegacyHash]], ...] = (
    (WRAP_PREFIX, _parse_wrapped),
    ("$argon2", _parse_argon2),
    ("$2", _parse_bcrypt),
    ("pbkdf2_sha256$", _parse_django),
    ("$pbkdf2-sha256$", _parse_passlib(pbkdf2_sha256, "passlib-pbkdf2-sha256")),
    ("$scrypt$", _parse_passlib(scrypt, "scrypt")),
    ("$5$", _parse_passlib(sha256_crypt, "sha256-crypt")),
    ("$6$", _parse_passlib(sha512_crypt, "sha512-crypt")),
)


def parse(stored: str) -> LegacyHash:
    """The one parser for every format Sekisho verifies; raises :class:`Unusable` for a
    hash that can never verify (unknown format, malformed, parameters out of range)."""
    if not stored or len(stored) > MAX_STORED:
        raise Unusable("empty or longer than 1024 characters")
    for prefix, parser in _PREFIXES:
        if stored.startswith(prefix):
            if parser is not _parse_django and not stored.isascii():
                raise Unusable("not ASCII")
            return parser(stored)
    if not stored.isascii():
        raise Unusable("not ASCII")
    return _parse_aspnet(stored)
