"""Records the tests and the benchmarks build alike: a pending email sign-in, a signed-in
session, a registered passkey. Only what a caller names differs from one to the next."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sekisho.core.records import Flow, FlowState, Passkey, Session


def email_flow(flow_id: str, email: str, now: datetime) -> Flow:
    """A pending email sign-in for ``email``, ten minutes to live."""
    return Flow(
        id=flow_id,
        kind="email_signin",
        state=FlowState.PENDING,
        email=email,
        binding_digest="b" * 64,
        approval_number=42,
        requested_ip="192.0.2.1",
        requested_user_agent="test",
        locale="en",
        created_at=now,
        expires_at=now + timedelta(minutes=10),
    )


def passkey_session(user_id: str, now: datetime, **changes: Any) -> Session:
    """A session a passkey (``hwk user``, AAL2) began at ``now``, a day to live."""
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "user_id": user_id,
        "created_at": now,
        "last_seen_at": now,
        "auth_time": now,
        "expires_at": now + timedelta(days=1),
        "ip": "192.0.2.1",
        "user_agent": "test",
        "amr": ("hwk", "user"),
        "aal": 2,
    }
    return Session(**(values | changes))


def passkey(passkey_id: str, user_id: str, now: datetime, **changes: Any) -> Passkey:
    """A registered passkey without attestation, never used."""
    values: dict[str, Any] = {
        "id": passkey_id,
        "user_id": user_id,
        "credential_id": b"credential-" + passkey_id.encode(),
        "public_key": b"\x01" * 77,
        "sign_count": 0,
        "transports": ("internal",),
        "aaguid": "00000000-0000-0000-0000-000000000000",
        "backup_eligible": False,
        "backup_state": False,
        "user_verified": True,
        "attestation_format": "none",
        "name": "Passkey",
        "created_at": now,
        "last_used_at": None,
    }
    return Passkey(**(values | changes))


def oidc_client_row(client_id: str, now: datetime) -> dict[str, Any]:
    """The stored columns of a confidential web client (``oidc_clients``)."""
    return {
        "id": client_id,
        "name": "クライアント",
        "auth_method": "client_secret_basic",
        "application_type": "web",
        "redirect_uris": '["https://rp.example/cb"]',
        "post_logout_redirect_uris": "[]",
        "first_party": False,
        "scopes": "openid email",
        "id_token_lifetime": 300,
        "access_token_lifetime": 600,
        "created_at": now,
    }
