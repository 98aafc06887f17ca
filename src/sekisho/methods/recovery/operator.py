"""Sign-in with the one-time code of an operator-assisted recovery (issue 10 "Recovery
that keeps the tier"; NIST SP 800-63B-4 §4.2: recovery by the service after identity
proofing).

One operator opened the case with a recorded reason, a second approved it, and the
approval made this code: shown once to the approving operator, who gives it to the
account holder out of band after confirming who they are. It is never emailed, so for
a tier that forbids email, control of the mailbox alone never recovers the account.

The method returns an :class:`OperatorCodeProof` and never creates a session; the
completion step restricts the session to enrolling a passkey
(:func:`sekisho.core.recovery.restriction_for`), as for a recovery code.

Invariants kept here, as in :mod:`sekisho.methods.recovery.signin`: an unknown address,
a disabled account, a wrong, used or expired code all do the same work and get the same
``recovery_failed``; failures count per address with the progressive delay; the code is
spent by one atomic statement; a success is audited and notified in its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sekisho.core import recovery_codes
from sekisho.core.clients import ClientInfo
from sekisho.core.keys import Keyring
from sekisho.core.notices import OPERATOR_RECOVERY_USED, queue_notice
from sekisho.core.policy import FailurePolicy
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, Passkey, User
from sekisho.core.recovery import VIA_OPERATOR_CODE
from sekisho.errors import ErrorCode, SekishoError
from sekisho.policy.assurance import RECOVERY_CODE

FAILURE_METHOD = "operator_recovery"
PURPOSE = "operator-recovery-code"


def code_digest(keys: Keyring, user_id: str, canonical: str) -> str:
    """The keyed hash of a canonical one-time code for one account."""
    return keys.digest(PURPOSE, f"{user_id}:{canonical}")


@dataclass(frozen=True, slots=True)
class OperatorCodeProof:
    """Possession of the code two operators released for ``email`` (AAL1, like any
    look-up secret); ``case_id`` names the case it spent."""

    email: str
    case_id: str
    flow_id: str = ""
    via: str = VIA_OPERATOR_CODE
    amr: tuple[str, ...] = RECOVERY_CODE.amr
    aal: int = RECOVERY_CODE.aal
    passkey: Passkey | None = None


class OperatorCodeSignIn:
    def __init__(self, *, keys: Keyring, failures: FailurePolicy) -> None:
        self._keys = keys
        self._failures = failures

    def verify(
        self, repos: Repositories, *, email: str, code: str, client: ClientInfo, now: datetime
    ) -> OperatorCodeProof:
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
        case_id = repos.operator_recoveries.consume(
            owner, code_digest(self._keys, owner, canonical), now=now
        )
        if case_id is None or usable is None:
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
        _audit(repos, "success", email, usable, client, now, case=case_id)
        queue_notice(
            repos,
            self._keys,
            user=usable,
            notice=OPERATOR_RECOVERY_USED,
            locale=client.locale,
            client=client,
            now=now,
        )
        return OperatorCodeProof(email=email, case_id=case_id)


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
            event="recovery.operator.used" if success else "recovery.operator.failed",
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
