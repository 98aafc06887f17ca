"""Sign-in with a recovery code (SECURITY.md cases 32 and 54; NIST SP 800-63B-4 §3.1.2).

The method checks an address and a code and returns a :class:`RecoveryCodeProof`; it
never creates a session (:mod:`sekisho.core.completion` does, restricted by
:func:`sekisho.core.recovery.restriction_for`).

Invariants kept here, with :mod:`.attempt` (shared with the operator's one-time code):
- an unknown address, a disabled account, an account without codes and a wrong or used
  code do the same work and get the same answer, ``recovery_failed``: nothing tells
  whether the account exists (case 10's rule, ASVS 6.3.8);
- a code is spent by one atomic statement, so it works once, even when raced;
- failures count per address with the same progressive delay as email codes (at most
  100 consecutive, §3.2.2);
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
from sekisho.core.records import Passkey
from sekisho.core.recovery import VIA_RECOVERY_CODE
from sekisho.methods.recovery.attempt import CodeAttempts
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
        self._attempts = CodeAttempts(
            failures=failures, failure_method=FAILURE_METHOD, event="recovery.code"
        )

    def verify(
        self, repos: Repositories, *, email: str, code: str, client: ClientInfo, now: datetime
    ) -> RecoveryCodeProof:
        """Spend ``code`` for ``email`` (already normalised) or refuse, the same way
        whatever the reason."""

        def consume(owner: str, canonical: str) -> bool | None:
            digest = recovery_codes.digest(self._keys, owner, canonical)
            return repos.recovery_codes.consume(owner, digest, now=now) or None

        user, _ = self._attempts.spend(
            repos, email=email, code=code, consume=consume, client=client, now=now
        )
        remaining = repos.recovery_codes.status(user.id).remaining
        self._attempts.audit(repos, "success", email, user, client, now, remaining=remaining)
        queue_notice(
            repos,
            self._keys,
            user=user,
            notice=RECOVERY_CODE_USED,
            locale=client.locale,
            client=client,
            now=now,
            remaining=str(remaining),
        )
        return RecoveryCodeProof(email=email)
