"""Recovery that keeps the account's strength (SECURITY.md cases 31, 32, 54; NIST SP
800-63B-4 §4.2 and §4.6).

- A recovery code (or the one-time code of an operator-assisted recovery, which two
  operators opened and approved) proves AAL1 and gives a *restricted* session: it may enrol one new
  passkey, then generate new recovery codes, and sign out; nothing else.
- Enrolling that passkey completes the recovery: every other session of the user ends,
  and sensitive changes (removing a passkey, regenerating recovery codes, changing the
  email address) are on hold for ``recovery_hold``, for every session of the account.
- Regenerating codes outside a recovery needs a fresh proof: a passkey sign-in with
  user verification within ``recovery_codes_reauthentication_window`` when the account
  has one, else any fresh sign-in but the legacy password within that window.

The restriction is kept as the session's own attribute (``Session.restriction``), so
the per-account tiers' restricted sessions can share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sekisho.core.clients import ClientInfo
from sekisho.core.keys import Keyring
from sekisho.core.notices import RECOVERY_COMPLETED, queue_notice
from sekisho.core.ports import Repositories
from sekisho.core.records import Passkey, Recovery, Session, User
from sekisho.core.sessions import session_event
from sekisho.errors import ErrorCode, SekishoError
from sekisho.policy.assurance import AMR_PASSWORD, Attestation, highest_aal

RESTRICTION_RECOVERY = "recovery"
VIA_RECOVERY_CODE = "recovery_code"
#: The one-time code of an operator-assisted recovery (``methods/recovery/operator.py``).
VIA_OPERATOR_CODE = "operator_recovery"


def restriction_for(via: str) -> str | None:
    """The restriction a proof's session gets: a recovery code, or an operator's
    one-time recovery code, gives a recovery session."""
    return RESTRICTION_RECOVERY if via in (VIA_RECOVERY_CODE, VIA_OPERATOR_CODE) else None


def is_recovery(session: Session) -> bool:
    return session.restriction == RESTRICTION_RECOVERY


@dataclass(frozen=True, slots=True)
class RecoveryRules:
    keys: Keyring
    hold: timedelta
    enrolment_window: timedelta
    regeneration_window: timedelta
    attestation: Attestation

    def may_enrol(self, repos: Repositories, session: Session, *, now: datetime) -> bool:
        """A recovery session may add one passkey, while it is fresh."""
        if not is_recovery(session) or now - session.auth_time > self.enrolment_window:
            return False
        recovery = repos.recoveries.for_session(session.id)
        return recovery is not None and recovery.completed_at is None

    def completed(self, repos: Repositories, session: Session) -> Recovery | None:
        """This session's recovery, once a passkey completed it."""
        if not is_recovery(session):
            return None
        recovery = repos.recoveries.for_session(session.id)
        return recovery if recovery is not None and recovery.completed_at else None

    def ensure_no_hold(self, repos: Repositories, user_id: str, *, now: datetime) -> None:
        until = repos.recoveries.hold_until(user_id, now=now)
        if until is not None:
            raise SekishoError(ErrorCode.recovery_hold, detail={"until": until.isoformat()})

    def may_regenerate(
        self, session: Session, passkeys: list[Passkey], recovery: Recovery | None, now: datetime
    ) -> bool:
        """Whether this session may replace the codes (or change the address) now, holds
        aside: a synced passkey's AAL2 session is not enough for an account that holds an
        AAL3 key."""
        if is_recovery(session):
            return recovery is not None and now - session.auth_time <= self.enrolment_window
        if session.restriction is not None or AMR_PASSWORD in session.amr:
            return False
        if now - session.auth_time > self.regeneration_window:
            return False
        return session.aal >= highest_aal(passkeys, self.attestation)

    def complete(
        self,
        repos: Repositories,
        session: Session,
        user: User,
        passkey: Passkey,
        *,
        locale: str,
        client: ClientInfo,
        now: datetime,
    ) -> datetime:
        """Finish the recovery with the passkey just enrolled: hold, end the other
        sessions, audit and notify, in the enrolment's transaction."""
        hold_until = now + self.hold
        if not repos.recoveries.complete(
            session.id, passkey_id=passkey.id, hold_until=hold_until, now=now
        ):
            raise SekishoError(ErrorCode.session_restricted)
        ended = repos.sessions.revoke_others(user.id, keep=session.id, now=now)
        repos.audit.append(
            session_event(
                "recovery.completed",
                session,
                client,
                now,
                detail={
                    "passkey": passkey.id,
                    "sessions_ended": ended,
                    "hold_until": hold_until.isoformat(),
                },
            )
        )
        queue_notice(
            repos,
            self.keys,
            user=user,
            notice=RECOVERY_COMPLETED,
            locale=locale,
            client=client,
            now=now,
            name=passkey.name,
            until=hold_until.isoformat(),
        )
        return hold_until
