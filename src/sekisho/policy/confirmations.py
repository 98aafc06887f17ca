"""Binding a confirmation to one transaction (SECURITY.md cases 52 and 53).

- The details are canonicalised with RFC 8785 (JSON Canonicalization Scheme, the
  ``rfc8785`` library): keys sorted by UTF-16 code units, no insignificant whitespace,
  strings minimally escaped. ``details_hash`` is base64url (no padding) of SHA-256 over
  those bytes; an application recomputes it from the details it is about to execute.
- The WebAuthn challenge is ``nonce || binding``: 32 random bytes (WebAuthn L3 §13.4.3:
  at least 16, generated server-side, used once) followed by the 32-byte SHA-256 of the
  RFC 8785 form of ``{"action", "aud", "details_hash", "jti", "sub"}``. The assertion's
  signature covers clientDataJSON, which carries the challenge, so a valid assertion
  proves the authenticator was asked about exactly this action, these details, this
  application, this person and this confirmation; the nonce keeps every ceremony's
  challenge unique even for the same transaction.
- RFC 9470 §3: a session whose AAL is below the tier's ``step_up`` level for the action,
  or whose ``auth_time`` is older than its ``max_age``, is answered with the
  requirement (``acr_values``, ``max_age``) rather than a confirmation.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import rfc8785

from sekisho.core.encoding import base64url
from sekisho.policy.assurance import AAL2
from sekisho.policy.tiers import Tier

NONCE_BYTES = 32
BINDING_BYTES = 32


def canonical(value: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of a JSON object."""
    return rfc8785.dumps(dict(value))


def details_hash(details: Mapping[str, str | int]) -> str:
    """base64url(SHA-256(JCS(details))), without padding."""
    return base64url(hashlib.sha256(canonical(details)).digest())


@dataclass(frozen=True, slots=True)
class Transaction:
    """What one confirmation is about, as the challenge binds it."""

    jti: str
    audience: str
    subject: str
    action: str
    details_hash: str

    def binding(self) -> bytes:
        document = {
            "action": self.action,
            "aud": self.audience,
            "details_hash": self.details_hash,
            "jti": self.jti,
            "sub": self.subject,
        }
        return hashlib.sha256(canonical(document)).digest()

    def challenge(self) -> bytes:
        return secrets.token_bytes(NONCE_BYTES) + self.binding()

    def bound_in(self, challenge: bytes) -> bool:
        """The challenge is a nonce followed by this transaction's binding."""
        return len(challenge) == NONCE_BYTES + BINDING_BYTES and secrets.compare_digest(
            challenge[NONCE_BYTES:], self.binding()
        )


@dataclass(frozen=True, slots=True)
class Requirement:
    """What the session behind a request must have proved (RFC 9470 §3), and the level
    the confirming passkey must reach (a passkey with user verification at least)."""

    aal: int
    max_age: timedelta | None

    @property
    def confirming_aal(self) -> int:
        return max(self.aal, AAL2)


def requirement(tier: Tier, action: str) -> Requirement:
    """The tier's ``step_up`` for the action; with none, any full session may ask."""
    step = tier.step_up_for(action)
    if step is None:
        return Requirement(aal=1, max_age=None)
    return Requirement(aal=step.aal, max_age=step.max_age)


def unmet(requirement: Requirement, *, aal: int, auth_time: datetime, now: datetime) -> bool:
    """The session's proof is too weak or too old for the action."""
    if aal < requirement.aal:
        return True
    return requirement.max_age is not None and now - auth_time > requirement.max_age


@dataclass(frozen=True, slots=True)
class Confirmation:
    """One request to confirm a transaction: asked by ``client_id`` for ``user_id``
    (from the access token's grant and its ``session_id``), confirmed once by a passkey,
    redeemed once by the same client. ``id`` is the signed confirmation's ``jti``."""

    id: str
    client_id: str
    user_id: str
    session_id: str
    action: str
    details: dict[str, str | int]
    details_hash: str
    return_uri: str | None
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None = None
    passkey_id: str | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    token: str | None = None
    redeemed_at: datetime | None = None

    def transaction(self) -> Transaction:
        return Transaction(
            jti=self.id,
            audience=self.client_id,
            subject=self.user_id,
            action=self.action,
            details_hash=self.details_hash,
        )

    def status(self, now: datetime) -> str:
        """``pending``, ``confirmed``, ``redeemed`` or ``expired``."""
        if self.redeemed_at is not None:
            return "redeemed"
        if self.expires_at <= now:
            return "expired"
        return "confirmed" if self.confirmed_at is not None else "pending"
