"""Sign-in with a recovery code (SECURITY.md cases 32 and 54; NIST SP 800-63B-4 §3.1.2).

The method checks an address and a code and returns a :class:`RecoveryCodeProof`; it
never creates a session (:mod:`sekisho.core.completion` does, restricted by
:func:`sekisho.core.recovery.restriction_for`).

Invariants kept here:
- an unknown address, a disabled account, an account without codes and a wrong or used
  code do the same work (one account lookup, one HMAC, one atomic ``UPDATE`` that finds
  nothing, one failure counted against the address, one audit event) and get the same
  answer, ``recovery_failed``: nothing tells whether the account exists (case 10's rule,
  ASVS 6.3.8). The code is HMAC-checked, so there is no slow hash to equalise;
- a code is spent by one atomic statement, so it works once, even when raced;
- failures count per address with the same progressive delay as email codes (at most
  100 consecutive, §3.2.2), on top of the per-IP, global and per-address rate limits the
  service applies;
- a successful use is audited and notified to the account's address in the same
  transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sekisho.core import recovery_codes
from sekisho.core.clients import ClientInfo
from sekisho.core.keys import Keyring
from sekisho.core.notices import RECOVERY_CODE_USED, queue_notice
from sekisho.core.policy import FailurePolicy
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, Passkey, User
from sekisho.core.recovery import VIA_RECOVERY_CODE
from sekisho.errors import ErrorCode, SekishoError
from sekisho.policy.assurance import RECOVERY_CODE

FAILURE_METHOD = "recovery_code"


@dataclass(frozen=True, slots=True)
class RecoveryCodeProof:
    """What a recovery code proved: possession of a code saved for ``email`` (AAL1)."""

    email: str
    flow_id: str = ""
    via: str = VIA_RECOVERY_CODE
    amr: tuple[str, ...] = RECOVERY_CODE.amr
    aal: int = RECOVERY_CODE.aal
    passkey: Passkey | None = None


class RecoveryCodeSignIn:
    def __init__(self, *, keys: Keyring, failures: FailurePolicy) -> None:
        self._keys = keys
        self._failures = failures

    def verify(
        self, repos: Repositories, *, email: str, code: str, client: ClientInfo, now: datetime
    ) -> RecoveryCodeProof:
        """Spend ``code`` for ``email`` (already normalised) or refuse, the same way
        whatever the reason."""
        canonical = recovery_codes.canonical(code)
        if canonical is None:
            raise SekishoError(ErrorCode.recovery_code_format)
        repos.locks.hold(f"email:{email}")
        previous = repos.failures.get(email, FAILURE_METHOD)
        if previous is not None:
            wait = self._failures.wait(previous.consecutive, previous.last_failure_at, now)
            if wait > 0:
                _audit(repos, "failure", email, None, client, now, reason="account_delay")
                raise SekishoError(ErrorCode.rate_limited, retry_after=wait, persist=True)
        user = repos.users.by_email(email)
        usable = user if user is not None and user.status == "active" else None
        owner = usable.id if usable is not None else ""
        spent = repos.recovery_codes.consume(
            owner, recovery_codes.digest(self._keys, owner, canonical), now=now
        )
        if not spent or usable is None:
            consecutive = repos.failures.record_failure(email, FAILURE_METHOD, now=now)
            _audit(
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
        repos.failures.reset(email, FAILURE_METHOD)
        remaining = repos.recovery_codes.status(usable.id).remaining
        _audit(repos, "success", email, usable, client, now, remaining=remaining)
        queue_notice(
            repos,
            self._keys,
            user=usable,
            notice=RECOVERY_CODE_USED,
            locale=client.locale,
            client=client,
            now=now,
            remaining=str(remaining),
        )
        return RecoveryCodeProof(email=email)


def _audit(
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
            event="recovery.code.used" if success else "recovery.code.failed",
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
