"""Assurance and throttling policy in one place (NIST SP 800-63B-4).

- Email proves control of an address, not possession of an authenticator (§3.1.3.1):
  a session made from an email link or code is AAL1 and never more.
- Failed attempts per account and method are capped (§3.2.2, at most 100 consecutive);
  after a few free attempts each further failure doubles the wait, and the cap holds
  the method for a bounded time: lockouts are progressive, never permanent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

AAL1 = 1
AMR_EMAIL = "email"


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
