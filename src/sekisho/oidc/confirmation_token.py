"""The signed transaction confirmation: a JWT (RFC 7519) with the explicit type
``txn-confirmation+jwt`` (RFC 8725 §3.11, so it is never taken for an ID or access
token), signed with the provider's current ES256 key so applications verify it with the
published JWKS, and with joserfc.

Claims: ``iss``; ``aud`` the client that asked; ``sub`` the person; ``jti`` the
confirmation id (redeemed once at ``POST /api/v1/confirmations/{jti}/redeem``);
``iat``/``exp``; ``action``, ``details`` and ``details_hash`` (see
:mod:`sekisho.policy.confirmations`); ``acr``, ``amr`` and ``auth_time`` of the passkey
assertion that confirmed it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from joserfc import jwt

from sekisho.oidc.records import SigningKey
from sekisho.oidc.signing_keys import ALGORITHM, PrivateKey
from sekisho.policy.confirmations import Confirmation

CONFIRMATION_TYPE = "txn-confirmation+jwt"


def confirmation_token(
    *,
    issuer: str,
    confirmation: Confirmation,
    subject: str,
    acr: str,
    amr: tuple[str, ...],
    key: SigningKey,
    private: PrivateKey,
    now: datetime,
    expires_at: datetime,
) -> str:
    """``sub`` is the person as the audience knows them (``oidc/subjects.py``: the user
    id, or the client's pairwise identifier)."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": confirmation.client_id,
        "sub": subject,
        "jti": confirmation.id,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "action": confirmation.action,
        "details": confirmation.details,
        "details_hash": confirmation.details_hash,
        "acr": acr,
        "amr": list(amr),
        "auth_time": int(now.timestamp()),
    }
    return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": CONFIRMATION_TYPE}, claims, private)
