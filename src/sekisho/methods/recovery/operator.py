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

Invariants kept here, by the same :mod:`.attempt` as a recovery code: an unknown
address, a disabled account, a wrong, used or expired code all do the same work and get
the same ``recovery_failed``; failures count per address with the progressive delay; the
code is spent by one atomic statement; a success is audited and notified in its
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sekisho.core.clients import ClientInfo
from sekisho.core.keys import Keyring
from sekisho.core.notices import OPERATOR_RECOVERY_USED, queue_notice
from sekisho.core.policy import FailurePolicy
from sekisho.core.ports import Repositories
from sekisho.core.records import Passkey
from sekisho.core.recovery import VIA_OPERATOR_CODE
from sekisho.methods.recovery.attempt import CodeAttempts
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
        self._attempts = CodeAttempts(
            failures=failures, failure_method=FAILURE_METHOD, event="recovery.operator"
        )

    def verify(
        self, repos: Repositories, *, email: str, code: str, client: ClientInfo, now: datetime
    ) -> OperatorCodeProof:
        """Spend ``code`` for ``email`` (already normalised) or refuse, the same way
        whatever the reason."""

        def consume(owner: str, canonical: str) -> str | None:
            digest = code_digest(self._keys, owner, canonical)
            return repos.operator_recoveries.consume(owner, digest, now=now)

        user, case_id = self._attempts.spend(
            repos, email=email, code=code, consume=consume, client=client, now=now
        )
        self._attempts.audit(repos, "success", email, user, client, now, case=case_id)
        queue_notice(
            repos,
            self._keys,
            user=user,
            notice=OPERATOR_RECOVERY_USED,
            locale=client.locale,
            client=client,
            now=now,
        )
        return OperatorCodeProof(email=email, case_id=case_id)
