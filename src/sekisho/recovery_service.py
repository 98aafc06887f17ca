"""Recovery operations for the pages: recovery codes (generate, use) and what the account
page shows about them. See :mod:`sekisho.core.recovery` for the rules and
docs/flows/recovery.md for the flow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from sekisho.core import recovery_codes
from sekisho.core.addresses import InvalidAddress, normalize_email
from sekisho.core.clients import ClientInfo
from sekisho.core.completion import Completion, IssuedSession, Proof
from sekisho.core.keys import Keyring
from sekisho.core.notices import RECOVERY_CODES_GENERATED, queue_notice
from sekisho.core.policy import FailurePolicy
from sekisho.core.ports import Repositories
from sekisho.core.records import Recovery, RecoveryCodeSet, Session, User
from sekisho.core.recovery import RecoveryRules, is_recovery
from sekisho.core.sessions import session_event
from sekisho.errors import ErrorCode, SekishoError
from sekisho.methods.recovery.signin import RecoveryCodeSignIn
from sekisho.ratelimits import RateLimits
from sekisho.store.database import Database


@dataclass(frozen=True, slots=True)
class RecoveryStatus:
    """What the account page shows about recovery for one session."""

    codes: RecoveryCodeSet
    may_generate: bool
    hold_until: datetime | None
    #: This session's recovery, when it is a recovery session.
    recovery: Recovery | None
    may_enrol: bool


Verified = TypeVar("Verified", bound=Proof)
Verified_co = TypeVar("Verified_co", bound=Proof, covariant=True)


class CodeMethod(Protocol[Verified_co]):
    """A sign-in method that spends a one-time recovery secret (:mod:`sekisho.methods.recovery`)."""

    def verify(
        self, repos: Repositories, *, email: str, code: str, client: ClientInfo, now: datetime
    ) -> Verified_co: ...


class RecoverySignIn(Generic[Verified]):
    """A one-time recovery secret in (a recovery code, or an operator's one-time code), a
    restricted recovery session out (:mod:`sekisho.core.recovery`), or ``recovery_failed``
    whatever was wrong.

    Per-IP, global and per-address rate limits come before any database work; the proof,
    the session, the recovery record and ``started`` (the method's own bookkeeping) are
    one transaction."""

    def __init__(
        self,
        *,
        database: Database,
        limits: RateLimits,
        completion: Completion,
        clock: Callable[[], datetime],
        method: CodeMethod[Verified],
        started: Callable[[Repositories, Verified, IssuedSession], None] | None = None,
    ) -> None:
        self._database = database
        self._limits = limits
        self._completion = completion
        self._clock = clock
        self._method = method
        self._started = started

    def sign_in(
        self, *, raw_email: str, code: str, client: ClientInfo, previous: str | None
    ) -> IssuedSession:
        try:
            address = normalize_email(raw_email)
        except InvalidAddress as error:
            raise SekishoError(ErrorCode.invalid_email) from error
        self._limits.hit_verification(client.ip)
        self._limits.hit(self._limits.recovery_per_address, address)
        with self._database.transaction() as repos:
            now = self._clock()
            proof = self._method.verify(repos, email=address, code=code, client=client, now=now)
            issued = self._completion.complete(
                repos, proof, client=client, previous_token=previous, now=now
            )
            repos.recoveries.start(
                Recovery(session_id=issued.session.id, user_id=issued.user.id, started_at=now)
            )
            if self._started is not None:
                self._started(repos, proof, issued)
            return issued


class RecoveryService:
    def __init__(
        self,
        *,
        database: Database,
        keys: Keyring,
        limits: RateLimits,
        completion: Completion,
        rules: RecoveryRules,
        failures: FailurePolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._database = database
        self._keys = keys
        self._limits = limits
        self._completion = completion
        self.rules = rules
        self._clock = clock
        self._signin = RecoverySignIn(
            database=database,
            limits=limits,
            completion=completion,
            clock=clock,
            method=RecoveryCodeSignIn(keys=keys, failures=failures),
        )

    def sign_in(
        self, *, raw_email: str, code: str, client: ClientInfo, previous: str | None
    ) -> IssuedSession:
        """A recovery code for an address: a restricted recovery session, or
        ``recovery_failed`` whatever was wrong (see :mod:`sekisho.methods.recovery`)."""
        return self._signin.sign_in(
            raw_email=raw_email, code=code, client=client, previous=previous
        )

    def generate(self, session: Session, *, client: ClientInfo) -> list[str]:
        """A new set of codes, replacing every earlier one, after a fresh proof (or
        within a recovery, once its passkey is enrolled); shown once, stored hashed."""
        self._limits.hit(self._limits.recovery_per_address, f"generate:{session.user_id}")
        with self._database.transaction() as repos:
            now = self._clock()
            user = _user(repos, session)
            recovery = self.rules.completed(repos, session)
            if is_recovery(session) and recovery is None:
                raise SekishoError(ErrorCode.session_restricted)
            if recovery is None:
                self.rules.ensure_no_hold(repos, user.id, now=now)
            passkeys = repos.passkeys.for_user(user.id)
            if not self.rules.may_regenerate(session, passkeys, recovery, now):
                raise SekishoError(ErrorCode.reauthentication_required)
            codes = recovery_codes.new_set()
            replaced = repos.recovery_codes.replace(
                user.id,
                [
                    recovery_codes.digest(self._keys, user.id, recovery_codes.ungrouped(code))
                    for code in codes
                ],
                now=now,
            )
            repos.audit.append(
                session_event(
                    "recovery.codes.generated",
                    session,
                    client,
                    now,
                    detail={"count": len(codes), "replaced": replaced},
                )
            )
            queue_notice(
                repos,
                self._keys,
                user=user,
                notice=RECOVERY_CODES_GENERATED,
                locale=client.locale,
                client=client,
                now=now,
                count=str(len(codes)),
            )
            return codes

    def status(self, session: Session) -> RecoveryStatus:
        with self._database.reading() as repos:
            now = self._clock()
            user = _user(repos, session)
            recovery = repos.recoveries.for_session(session.id) if is_recovery(session) else None
            completed = recovery if recovery is not None and recovery.completed_at else None
            hold_until = repos.recoveries.hold_until(user.id, now=now)
            passkeys = repos.passkeys.for_user(user.id)
            may_generate = self.rules.may_regenerate(session, passkeys, completed, now) and (
                completed is not None or hold_until is None
            )
            return RecoveryStatus(
                codes=repos.recovery_codes.status(user.id),
                may_generate=may_generate,
                hold_until=hold_until,
                recovery=recovery,
                may_enrol=self.rules.may_enrol(repos, session, now=now),
            )


def _user(repos: Repositories, session: Session) -> User:
    user = repos.users.by_id(session.user_id)
    if user is None:
        raise SekishoError(ErrorCode.not_authenticated)
    return user
