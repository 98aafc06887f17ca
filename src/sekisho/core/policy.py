"""Assurance and throttling policy in one place (NIST SP 800-63B-4).

- Email proves control of an address, not possession of an authenticator (§3.1.3.1):
  a session made from an email link or code is AAL1 and never more.
- Failed attempts per account and method are capped (§3.2.2, at most 100 consecutive);
  after a few free attempts each further failure doubles the wait, and the cap holds
  the method for a bounded time: lockouts are progressive, never permanent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sekisho.core.records import Passkey, Session

AAL1 = 1
AAL2 = 2
AMR_EMAIL = "email"
AMR_PASSWORD = "pwd"  # noqa: S105 (an RFC 8176 amr value)
#: A saved recovery code (a look-up secret). RFC 8176 has no value of its own for it;
#: ``otp`` is the nearest. Recovery sessions are restricted and never reach a client.
AMR_RECOVERY_CODE = "otp"


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    free_attempts: int
    cap: int
    max_delay: timedelta
    lockout: timedelta

    def wait(self, consecutive: int, last_failure_at: datetime, now: datetime) -> int:
        """Seconds until the next attempt may be evaluated; 0 when it may be now."""
        if consecutive >= self.cap:
            until = last_failure_at + self.lockout
        elif consecutive >= self.free_attempts:
            exponent = min(consecutive - self.free_attempts, 20)
            delay = min(timedelta(seconds=2**exponent), self.max_delay)
            until = last_failure_at + delay
        else:
            return 0
        remaining = (until - now).total_seconds()
        return max(0, int(remaining + 0.999))


def aal_for_email() -> int:
    """An email link or code yields AAL1 (NIST SP 800-63B-4 §3.1.3.1)."""
    return AAL1


def amr_for_passkey(*, backup_eligible: bool, user_verified: bool) -> tuple[str, ...]:
    """RFC 8176 values for a passkey: ``hwk`` for a device-bound key (BE=0), ``swk`` for a
    synced one; ``user`` for presence only, ``pin`` and ``mfa`` when the authenticator
    verified the user (PIN or biometric: it does not say which)."""
    key = "swk" if backup_eligible else "hwk"
    return (key, "pin", "mfa") if user_verified else (key, "user")


def aal_for_passkey(*, user_verified: bool) -> int:
    """A passkey with user verification is multi-factor cryptographic and phishing
    resistant: AAL2. Presence only is single-factor: AAL1 (NIST SP 800-63B-4 §3.1.7)."""
    return AAL2 if user_verified else AAL1


def phishing_resistant(session: Session) -> bool:
    """A passkey with user verification (AAL2 and more): what operators need (issue 10).
    Email, a password or a recovery code never is, whatever else the session holds."""
    return session.aal >= AAL2 and bool({"hwk", "swk"}.intersection(session.amr))


def highest_aal(passkeys: Sequence[Passkey]) -> int:
    """The strongest level the account can reach with what it has registered."""
    return AAL2 if any(passkey.user_verified for passkey in passkeys) else AAL1


def recently_authenticated(
    session: Session, *, required_aal: int, window: timedelta, now: datetime
) -> bool:
    """Binding or removing an authenticator needs a fresh proof at the account's highest
    level (NIST SP 800-63B-4 §4.1.2.1; ASVS 7.5.1)."""
    return session.aal >= required_aal and now - session.auth_time <= window
