"""The stored objects the domain works with, as plain immutable records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sekisho.core.request_ids import current_request_id


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    status: str
    created_at: datetime
    email_verified_at: datetime | None = None
    display_name: str | None = None
    last_sign_in_at: datetime | None = None
    webauthn_handle: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    migration_mode: str | None = None
    imported_at: datetime | None = None
    password_retired_at: datetime | None = None
    tier: str | None = None
    #: The language of the account's last sign-in: notices of changes nobody made from
    #: the holder's own browser (an operator's) are written in it.
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class StoredPassword:
    """A legacy password hash kept only as a bridge (argon2id once it has been used)."""

    user_id: str
    hash: str
    scheme: str
    created_at: datetime
    updated_at: datetime


class FlowState:
    """States of a sign-in flow. Transitions are atomic compare-and-set in the store."""

    PENDING = "pending"
    APPROVED = "approved"
    COMPLETED = "completed"
    SUPERSEDED = "superseded"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Flow:
    """A sign-in in progress (ARCHITECTURE.md: flows are stored objects)."""

    id: str
    kind: str
    state: str
    email: str
    binding_digest: str
    approval_number: int
    requested_ip: str
    requested_user_agent: str
    locale: str
    created_at: datetime
    expires_at: datetime

    def effective_state(self, now: datetime) -> str:
        if self.state in (FlowState.PENDING, FlowState.APPROVED) and now >= self.expires_at:
            return FlowState.EXPIRED
        return self.state


@dataclass(frozen=True, slots=True)
class CodeAttempt:
    """An attempt already counted against a code, returned before comparing."""

    secret_id: int
    digest: str
    attempts: int
    max_attempts: int

    @property
    def remaining(self) -> int:
        return max(0, self.max_attempts - self.attempts)


@dataclass(frozen=True, slots=True)
class FailureCount:
    consecutive: int
    last_failure_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    created_at: datetime
    last_seen_at: datetime
    auth_time: datetime
    expires_at: datetime
    ip: str
    user_agent: str
    amr: tuple[str, ...]
    aal: int
    restriction: str | None = None
    idle_limit: timedelta | None = None

    @property
    def restricted(self) -> bool:
        """A restricted session may only enrol a passkey: ``enrol_passkey`` (the account
        moved into a stricter tier) or ``recovery`` (signed in with a recovery code)."""
        return self.restriction is not None


@dataclass(frozen=True, slots=True)
class RecoveryCodeSet:
    """What the account page may know of a user's recovery codes (never the codes)."""

    generated_at: datetime | None
    remaining: int


@dataclass(frozen=True, slots=True)
class Recovery:
    """An account recovery: started by a recovery code, completed by a new passkey, then
    holding sensitive changes until ``hold_until``."""

    session_id: str
    user_id: str
    started_at: datetime
    completed_at: datetime | None = None
    hold_until: datetime | None = None
    passkey_id: str | None = None


@dataclass(frozen=True, slots=True)
class OperatorRecovery:
    """A recovery an operator opened for an account (``reason`` recorded), which a
    second operator approves; the approval makes a one-time code (kept only as a keyed
    hash) that leads to a recovery session, once, before ``expires_at``."""

    id: str
    user_id: str
    email: str
    reason: str
    opened_by: str
    opened_at: datetime
    expires_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None
    used_at: datetime | None = None
    session_id: str | None = None
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None

    def state(self, now: datetime) -> str:
        """``used``, ``cancelled``, ``expired``, ``approved`` (its code waits) or
        ``open``."""
        if self.used_at is not None:
            return "used"
        if self.cancelled_at is not None:
            return "cancelled"
        if self.expires_at <= now:
            return "expired"
        return "approved" if self.approved_at is not None else "open"


@dataclass(frozen=True, slots=True)
class Passkey:
    """A registered WebAuthn credential (WebAuthn L3 §7.1 step 27: what the RP stores)."""

    id: str
    user_id: str
    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str
    backup_eligible: bool
    backup_state: bool
    user_verified: bool
    attestation_format: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    attestation_trusted: bool = False


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One security event: who, what, how, from where, the outcome and when."""

    event: str
    outcome: str
    at: datetime
    ip: str | None = None
    user_agent: str | None = None
    user_id: str | None = None
    email: str | None = None
    session_id: str | None = None
    flow_id: str | None = None
    amr: tuple[str, ...] = ()
    aal: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = field(default_factory=current_request_id)
