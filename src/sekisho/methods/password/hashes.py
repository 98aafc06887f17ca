"""Password hashes: argon2id for everything Sekisho writes, verifiers for what it imports.

Invariants (OWASP Password Storage, SECURITY.md cases 23-25 and 60):
- new hashes are argon2id with m = 19 MiB, t = 2, p = 1 (argon2-cffi);
- every other format is a legacy hash, parsed and verified by
  :mod:`sekisho.methods.password.legacy`, stored wrapped (argon2id over the legacy key,
  :func:`prepare_for_storage`), and replaced by a plain argon2id hash at the first
  successful sign-in;
- a hash that can never verify is refused at import (:func:`check` raises), never
  stored as-is;
- a password is never truncated, except when checking a legacy bcrypt hash, which
  only ever saw the first 72 bytes; the argon2id rehash then covers all of it.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from sekisho.methods.password.legacy import LegacyHash, Unusable, parse

__all__ = [
    "MAX_PASSWORD_BYTES",
    "Unusable",
    "burn_time",
    "check",
    "hash_password",
    "needs_rehash",
    "prepare_for_storage",
    "scheme_of",
    "verify_password",
]

MAX_PASSWORD_BYTES = 1024

ARGON2 = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)


def hash_password(password: str) -> str:
    """A new argon2id hash (the only format Sekisho writes)."""
    return ARGON2.hash(password)


def _own(stored: str) -> bool:
    """An argon2id hash with exactly Sekisho's parameters (stronger ones too are legacy:
    every stored hash converges on the one configured cost)."""
    if not stored.startswith("$argon2id$"):
        return False
    try:
        return not ARGON2.check_needs_rehash(stored)
    except InvalidHashError:
        return False


def check(stored: str) -> LegacyHash | None:
    """Parse ``stored`` with the code sign-in verifies it with: None for Sekisho's own
    argon2id, the parsed legacy hash otherwise; :class:`Unusable` when it can never
    verify."""
    if _own(stored):
        return None
    return parse(stored)


def scheme_of(stored: str) -> str | None:
    """The format of a stored hash (a wrapped hash: the legacy format inside), or None
    when Sekisho cannot verify it."""
    try:
        legacy = check(stored)
    except Unusable:
        return None
    return "argon2id" if legacy is None else legacy.scheme


def prepare_for_storage(stored: str) -> tuple[str, str]:
    """(hash to store, scheme) for an imported hash: Sekisho's own argon2id as it is,
    any legacy hash wrapped. Raises :class:`Unusable` for a hash that can never verify."""
    legacy = check(stored)
    if legacy is None:
        return stored, "argon2id"
    return legacy.wrap(ARGON2), legacy.scheme


def needs_rehash(stored: str) -> bool:
    """True for anything but a plain argon2id hash with Sekisho's parameters."""
    return not _own(stored)


def _argon2(stored: str, password: str) -> bool:
    try:
        return ARGON2.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_password(stored: str, password: str) -> bool:
    """Constant-time check of ``password`` against a stored hash of any known format."""
    if _own(stored):
        return _argon2(stored, password)
    try:
        legacy = parse(stored)
    except Unusable:
        return False
    return legacy.verify(password, ARGON2)


@cache
def _dummy_hash() -> str:
    return hash_password("sekisho-dummy-password-for-unknown-accounts")


def burn_time(password: str) -> None:
    """Spend one argon2id verification for an unknown account (SECURITY.md case 24); the
    web layer pads every attempt to the same floor on top of it (case 60)."""
    _argon2(_dummy_hash(), password)
