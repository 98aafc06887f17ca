"""Throttling and freshness rules (NIST SP 800-63B-4); the AAL of each proof is
decided in :mod:`sekisho.policy.assurance`.

- Failed attempts per account and method are capped (§3.2.2, at most 100 consecutive);
  after a few free attempts each further failure doubles the wait, and the cap holds
  the method for a bounded time: lockouts are progressive, never permanent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sekisho.core.records import Session


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


def recently_authenticated(
    session: Session, *, required_aal: int, window: timedelta, now: datetime
) -> bool:
    """Binding or removing an authenticator needs a fresh proof at the account's highest
    level (NIST SP 800-63B-4 §4.1.2.1; ASVS 7.5.1)."""
    return session.aal >= required_aal and now - session.auth_time <= window
