"""API keys for the admin API (issue 9 "Clients", issue 10 "Operators"): bearer
credentials (RFC 6750 §2.1) that name their own id, so one lookup by id and one
constant-time HMAC comparison (never argon2 per request) decide.

A key reads ``sk_<id>_<secret>``: the ``sk_`` prefix makes leaked keys recognisable to
secret scanners, the 16 hex digit id is the lookup key and the 256-bit secret is stored
only as its keyed hash (core/keys.py, purpose ``api-key``), bound to the id.

Invariant: the clear key exists only in the answer to ``create``; a revoked key, a key
of another deployment or a malformed value never authenticates. A key with a scope that
acts on recovery cases (:data:`OPERATOR_SCOPES`) names the operator it belongs to, an
address in ``admin_emails`` (:mod:`sekisho.core.operators`), so that the two-person rule
sees the person behind it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sekisho.core.keys import Keyring
from sekisho.core.operators import operator_address

PURPOSE = "api-key"
PREFIX = "sk_"
SCOPES = (
    "clients:read",
    "clients:write",
    "users:read",
    "users:write",
    "recovery:read",
    "recovery:open",
    "recovery:approve",
)
#: Scopes whose steps an operator takes as a person (the two-person rule of recovery).
OPERATOR_SCOPES = ("recovery:open", "recovery:approve")
_SHAPE = re.compile(r"sk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
NAME_LENGTH = 100


class ApiKeyRefused(ValueError):
    """A key that cannot be made as asked, said plainly for the operator."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What is stored about a key: never the key itself."""

    id: str
    name: str
    scopes: tuple[str, ...]
    digest: str
    created_at: datetime
    #: The operator the key belongs to (a normalised address), or None: then it cannot
    #: act on recovery cases, whatever its scopes.
    operator: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        return self.revoked_at is None and scope in self.scopes


@dataclass(frozen=True, slots=True)
class NewApiKey:
    record: ApiKey
    key: str


def make(
    keys: Keyring,
    *,
    name: str,
    scopes: list[str],
    now: datetime,
    operator: str | None = None,
    operators: frozenset[str] = frozenset(),
) -> NewApiKey:
    """A new key with the given scopes, belonging to ``operator`` (required for
    :data:`OPERATOR_SCOPES`, and then one of ``operators``); ``key`` is to be shown
    once and forgotten."""
    name = name.strip()
    if not name or len(name) > NAME_LENGTH or not name.isprintable():
        raise ApiKeyRefused(f"a key's name is 1 to {NAME_LENGTH} printable characters")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ApiKeyRefused(f"scopes are one or more of {', '.join(SCOPES)}")
    if operator is not None:
        address = operator_address(operator, operators)
        if address is None:
            raise ApiKeyRefused(f"{operator} is not an operator: give an address in admin_emails")
        operator = address
    elif set(scopes) & set(OPERATOR_SCOPES):
        raise ApiKeyRefused(
            f"a key with {' or '.join(OPERATOR_SCOPES)} belongs to an operator: "
            "give --operator with their address in admin_emails"
        )
    identifier = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    record = ApiKey(
        id=identifier,
        name=name,
        scopes=tuple(scope for scope in SCOPES if scope in scopes),
        digest=digest(keys, identifier, secret),
        created_at=now,
        operator=operator,
    )
    return NewApiKey(record=record, key=f"{PREFIX}{identifier}_{secret}")


def digest(keys: Keyring, identifier: str, secret: str) -> str:
    return keys.digest(PURPOSE, f"{identifier}:{secret}")


def parse(presented: str) -> tuple[str, str] | None:
    """The id and secret of a well-formed key, else None."""
    match = _SHAPE.fullmatch(presented)
    return (match.group(1), match.group(2)) if match else None


def verify(keys: Keyring, record: ApiKey | None, presented: str) -> bool:
    """True when ``presented`` is the live key ``record`` was made for."""
    parts = parse(presented)
    if parts is None or record is None or record.id != parts[0] or record.revoked_at:
        return False
    return keys.matches(PURPOSE, f"{parts[0]}:{parts[1]}", record.digest)
