"""The narrow interfaces the domain needs from storage (implemented in ``sekisho.store``).

Every method that changes a one-time secret, a flow's state or a counter is a single
atomic statement in the store (``UPDATE ... WHERE ... RETURNING``), so concurrent
requests on any number of instances see exactly one winner.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from sekisho.core.records import (
    AuditEvent,
    CodeAttempt,
    FailureCount,
    Flow,
    OperatorRecovery,
    Passkey,
    Recovery,
    RecoveryCodeSet,
    Session,
    StoredPassword,
    User,
)

Clock = Callable[[], datetime]


class Users(Protocol):
    def by_email(self, email: str) -> User | None: ...
    def by_id(self, user_id: str) -> User | None: ...
    def create(
        self, email: str, *, now: datetime, verified: bool, display_name: str | None = None
    ) -> User: ...
    def mark_signed_in(
        self, user_id: str, *, now: datetime, email_proven: bool, locale: str
    ) -> None:
        """Record a sign-in and its language (``locale``); only a proof of the mailbox
        marks the address verified."""
        ...

    def set_status(self, email: str, status: str, *, now: datetime) -> bool:
        """Change an account's status; any status but ``active`` ends its sessions."""
        ...

    def all(self) -> Iterator[User]: ...
    def ensure_webauthn_handle(self, user_id: str, candidate: str) -> str:
        """The user's WebAuthn user handle, storing ``candidate`` if it has none yet."""
        ...

    def by_webauthn_handle(self, handle: str) -> User | None: ...
    def save_imported(self, user: User) -> str:
        """Insert or update an imported account by id; 'created', 'updated' or 'unchanged'."""
        ...

    def retire_password(self, user_id: str, *, now: datetime) -> None: ...
    def set_tier(self, user_id: str, tier: str | None) -> None:
        """Store the operator's tier choice (None: the policy's rules decide)."""

    def tier_counts(self) -> dict[str, int]:
        """How many accounts an operator put in each tier."""

    def set_attributes(self, user_id: str, attributes: dict[str, Any]) -> None:
        """Replace the attributes the policy's rules read."""


class Passwords(Protocol):
    def get(self, user_id: str) -> StoredPassword | None: ...
    def put(self, user_id: str, *, hash: str, scheme: str, now: datetime) -> None: ...
    def delete(self, user_id: str) -> bool: ...
    def any_usable(self, default_mode: str) -> bool:
        """Whether at least one account has a password that its migration mode (its own,
        else ``default_mode``) lets it sign in with."""
        ...


class Passkeys(Protocol):
    def add(self, passkey: Passkey) -> bool:
        """Store a new credential; False when its credential id is already registered
        (to anyone: WebAuthn L3 §7.1 step 26)."""
        ...

    def by_credential_id(self, credential_id: bytes) -> Passkey | None: ...
    def for_user(self, user_id: str) -> list[Passkey]: ...
    def record_use(
        self, passkey_id: str, *, sign_count: int, backup_state: bool, now: datetime
    ) -> None: ...
    def rename(self, user_id: str, passkey_id: str, name: str) -> bool: ...
    def remove(self, user_id: str, passkey_id: str) -> Passkey | None: ...


class Flows(Protocol):
    def create(self, flow: Flow) -> None: ...
    def get(self, flow_id: str) -> Flow | None: ...
    def supersede_pending(self, email: str, kind: str, *, now: datetime) -> list[str]:
        """Mark pending flows for ``email`` superseded; return their ids."""
        ...

    def transition(self, flow_id: str, *, from_state: str, to_state: str, now: datetime) -> bool:
        """Compare-and-set the state of an unexpired flow; True for the one winner."""
        ...


class Secrets(Protocol):
    def add(
        self,
        *,
        flow_id: str,
        purpose: str,
        kind: str,
        digest: str,
        max_attempts: int,
        expires_at: datetime,
    ) -> None: ...
    def find_live(self, *, purpose: str, kind: str, digest: str, now: datetime) -> str | None:
        """The flow id of a live secret found by its digest, without spending it (GET, HEAD)."""
        ...

    def consume_live(self, *, purpose: str, kind: str, digest: str, now: datetime) -> str | None:
        """Atomically spend a live secret found by its digest; the flow id for the one winner."""
        ...

    def take_code_attempt(self, *, flow_id: str, purpose: str, now: datetime) -> CodeAttempt | None:
        """Atomically count one attempt against a live code, before it is compared."""
        ...

    def consume(self, secret_id: int, *, reason: str, now: datetime) -> bool: ...
    def spend_flow(self, flow_id: str, *, reason: str, now: datetime) -> None:
        """Spend every live secret of a flow (after any final outcome)."""
        ...


class FailureCounters(Protocol):
    def get(self, subject: str, method: str) -> FailureCount | None: ...
    def record_failure(self, subject: str, method: str, *, now: datetime) -> int: ...
    def reset(self, subject: str, method: str) -> None: ...


class Sessions(Protocol):
    def create(self, session: Session, *, token_digest: str) -> None: ...
    def by_token(self, token_digest: str) -> Session | None:
        """A session that has not been revoked (timeouts are checked by the caller)."""
        ...

    def touch(self, session_id: str, *, now: datetime) -> None: ...
    def revoke(self, session_id: str, *, reason: str, now: datetime) -> bool: ...
    def revoke_others(self, user_id: str, *, keep: str, now: datetime) -> int: ...
    def active_for(self, user_id: str) -> list[Session]: ...
    def users_signed_in(self, *, now: datetime) -> list[str]:
        """The accounts that hold an unrestricted session not yet past its absolute end."""
        ...


class RecoveryCodes(Protocol):
    def replace(self, user_id: str, digests: list[str], *, now: datetime) -> int:
        """Delete every code of the user and store these; the number deleted."""
        ...

    def consume(self, user_id: str, digest: str, *, now: datetime) -> bool:
        """Atomically spend an unused code (``UPDATE ... WHERE used_at IS NULL
        RETURNING``); True for the one winner."""
        ...

    def status(self, user_id: str) -> RecoveryCodeSet: ...


class Recoveries(Protocol):
    def start(self, recovery: Recovery) -> None: ...
    def for_session(self, session_id: str) -> Recovery | None: ...
    def complete(
        self, session_id: str, *, passkey_id: str, hold_until: datetime, now: datetime
    ) -> bool:
        """Atomically mark an uncompleted recovery completed; True for the one winner."""
        ...

    def hold_until(self, user_id: str, *, now: datetime) -> datetime | None:
        """The end of the latest hold still running for the user, if any."""
        ...


class OperatorRecoveries(Protocol):
    def open(self, case: OperatorRecovery) -> None: ...
    def get(self, case_id: str) -> OperatorRecovery | None: ...
    def pending_for(self, user_id: str, *, now: datetime) -> OperatorRecovery | None:
        """The user's case that is neither used nor expired, if any."""
        ...

    def for_session(self, session_id: str) -> OperatorRecovery | None:
        """The case whose code made this (recovery) session."""
        ...

    def recent(self, *, limit: int) -> list[OperatorRecovery]: ...
    def approve(
        self, case_id: str, *, by: str, code_digest: str, expires_at: datetime, now: datetime
    ) -> bool:
        """Atomically approve an open, unexpired case opened by someone other than
        ``by``, storing the code's keyed hash; True for the one winner."""
        ...

    def consume(self, user_id: str, code_digest: str, *, now: datetime) -> str | None:
        """Atomically spend an approved, unexpired, unused code (``UPDATE ... WHERE
        used_at IS NULL ... RETURNING``); the case id for the one winner."""
        ...

    def attach_session(self, case_id: str, session_id: str) -> None: ...
    def cancel(self, case_id: str, *, by: str, now: datetime) -> bool:
        """Atomically end an unused, uncancelled, unexpired case (its code with it);
        True for the one winner."""
        ...


class KnownDevices(Protocol):
    def known(self, user_id: str, digest: str, *, now: datetime) -> bool:
        """True when the account has signed in from this browser before (its last
        sighting is kept to the day)."""
        ...

    def add(self, user_id: str, digest: str, *, now: datetime) -> bool:
        """Record a browser new to the account; False when another sign-in just did."""
        ...

    def any_for(self, user_id: str) -> bool: ...


class Audit(Protocol):
    def append(self, event: AuditEvent) -> None: ...
    def recent(
        self,
        user_id: str,
        email: str,
        limit: int,
        events: Collection[str] | None = None,
        since: datetime | None = None,
    ) -> list[AuditEvent]:
        """The newest events about an account, by its id or its address (requests and
        failed attempts are recorded by address, before any account is looked up)."""
        ...


class Outbox(Protocol):
    def enqueue(self, *, kind: str, sealed_payload: str, now: datetime) -> None: ...


class Locks(Protocol):
    def hold(self, key: str) -> None:
        """Serialise this transaction with every other that holds ``key``, until it ends
        (so a read-then-write about one address cannot interleave across instances)."""
        ...


class AppliedPolicy(Protocol):
    def claim(self, fingerprint: str, *, now: datetime) -> bool:
        """Record ``fingerprint`` as the policy applied; True when this call changed the
        record, so that of several processes starting at once exactly one applies it."""
        ...


class Repositories(Protocol):
    """Everything one transaction can touch."""

    @property
    def locks(self) -> Locks: ...
    @property
    def users(self) -> Users: ...
    @property
    def flows(self) -> Flows: ...
    @property
    def secrets(self) -> Secrets: ...
    @property
    def failures(self) -> FailureCounters: ...
    @property
    def sessions(self) -> Sessions: ...
    @property
    def audit(self) -> Audit: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def passkeys(self) -> Passkeys: ...
    @property
    def passwords(self) -> Passwords: ...
    @property
    def recovery_codes(self) -> RecoveryCodes: ...
    @property
    def recoveries(self) -> Recoveries: ...
    @property
    def devices(self) -> KnownDevices: ...
    @property
    def operator_recoveries(self) -> OperatorRecoveries: ...
    @property
    def applied_policy(self) -> AppliedPolicy: ...


class Transactions(Protocol):
    def transaction(self) -> AbstractContextManager[Repositories]:
        """One atomic unit of work. An exception rolls it back, except a
        :class:`sekisho.errors.SekishoError` with ``persist=True``, which commits first."""
        ...
