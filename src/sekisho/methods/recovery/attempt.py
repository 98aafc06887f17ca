"""One attempt at a one-time recovery secret: what signing in with a recovery code
(:mod:`.signin`) and with an operator's one-time code (:mod:`.operator`) share
(SECURITY.md cases 32 and 54; NIST SP 800-63B-4 §3.1.2, §3.2.2).

Invariants kept here:
- an unknown address, a disabled account, an account without a usable secret and a
  wrong, used or expired secret do the same work (one account lookup, one HMAC, one
  atomic ``UPDATE`` that finds nothing, one failure counted against the address, one
  audit event) and get the same answer, ``recovery_failed``: nothing tells whether the
  account exists (case 10's rule, ASVS 6.3.8). The secret is HMAC-checked, so there is
  no slow hash to equalise;
- the secret is spent by the caller's one atomic statement (``consume``), so it works
  once, even when raced;
- failures count per address and method with the same progressive delay as email codes
  (at most 100 consecutive, §3.2.2), on top of the per-IP, global and per-address rate
  limits the services apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sekisho.core import recovery_codes
from sekisho.core.clients import ClientInfo
from sekisho.core.policy import FailurePolicy
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, User
from sekisho.errors import ErrorCode, SekishoError
from sekisho.policy.assurance import RECOVERY_CODE

Spent = TypeVar("Spent")

Consume = Callable[[str, str], Spent | None]
"""Spend the canonical secret for an account id (``""`` when there is no usable
account, which matches nothing) in one statement: what it spent, or None."""


@dataclass(frozen=True, slots=True)
class CodeAttempts:
    """Throttled, audited attempts at one kind of secret: failures are counted under
    ``failure_method`` and audited as ``{event}.failed``, successes as ``{event}.used``."""

    failures: FailurePolicy
    failure_method: str
    event: str

    def spend(
        self,
        repos: Repositories,
        *,
        email: str,
        code: str,
        consume: Consume[Spent],
        client: ClientInfo,
        now: datetime,
    ) -> tuple[User, Spent]:
        """Spend ``code`` for ``email`` (already normalised) or refuse, the same way
        whatever the reason: the active account and what ``consume`` spent."""
        canonical = recovery_codes.canonical(code)
        if canonical is None:
            raise SekishoError(ErrorCode.recovery_code_format)
        repos.locks.hold(f"email:{email}")
        previous = repos.failures.get(email, self.failure_method)
        if previous is not None:
            wait = self.failures.wait(previous.consecutive, previous.last_failure_at, now)
            if wait > 0:
                self.audit(repos, "failure", email, None, client, now, reason="account_delay")
                raise SekishoError(ErrorCode.rate_limited, retry_after=wait, persist=True)
        user = repos.users.by_email(email)
        usable = user if user is not None and user.status == "active" else None
        spent = consume(usable.id if usable is not None else "", canonical)
        if spent is None or usable is None:
            consecutive = repos.failures.record_failure(email, self.failure_method, now=now)
            self.audit(
                repos,
                "failure",
                email,
                user,
                client,
                now,
                reason="code_not_usable",
                consecutive_failures=consecutive,
            )
            raise SekishoError(ErrorCode.recovery_failed, persist=True)
        repos.failures.reset(email, self.failure_method)
        return usable, spent

    def audit(
        self,
        repos: Repositories,
        outcome: str,
        email: str,
        user: User | None,
        client: ClientInfo,
        now: datetime,
        **detail: object,
    ) -> None:
        success = outcome == "success"
        repos.audit.append(
            AuditEvent(
                event=f"{self.event}.used" if success else f"{self.event}.failed",
                outcome=outcome,
                at=now,
                ip=client.ip,
                user_agent=client.user_agent,
                user_id=user.id if user else None,
                email=email,
                amr=RECOVERY_CODE.amr if success else (),
                aal=RECOVERY_CODE.aal if success else None,
                detail=dict(detail),
            )
        )
