"""Operator-assisted recovery (issue 10 "Recovery that keeps the tier", SECURITY.md case
54; NIST SP 800-63B-4 §4.2): for an account whose holder lost every passkey and every
recovery code. One implementation behind ``sekisho recovery open|approve|list`` and the
admin API (``/api/v1/admin/recoveries``). docs/flows/recovery.md draws it.

Invariants:
- every step is taken by an operator, a person named by their address in
  ``admin_emails`` whatever the channel (:mod:`sekisho.core.operators`); anyone else is
  refused, and audited;
- two people: the operator who approves a case is never the one who opened it, compared
  as people (``operator:<address>``), never as channels, in the approving ``UPDATE``
  itself; a case whose opener names no person (opened before operators were recorded so)
  cannot be approved; the opener records a reason; any operator may cancel a case not
  used yet, with a reason (for a holder who never asked);
- the approval makes one code, shown once to the approving operator and stored only as
  a keyed hash, valid once and for ``code_lifetime``; it is handed over out of band
  after the operator confirmed who the holder is, never emailed, so a mailbox alone
  never recovers an account, whatever its tier allows;
- the code leads to the same restricted recovery session as a recovery code: it can
  only enrol a passkey, whose enrolment ends every other session and starts the hold
  (:mod:`sekisho.core.recovery`);
- the holder is told by email at every step (opened, approved, code used, recovery
  completed), each step and each refusal is audited, in the step's transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sekisho.core import recovery_codes
from sekisho.core.addresses import InvalidAddress, normalize_email
from sekisho.core.clients import ClientInfo
from sekisho.core.completion import Completion, IssuedSession
from sekisho.core.keys import Keyring
from sekisho.core.notices import (
    BY_OPERATOR,
    OPERATOR_RECOVERY_APPROVED,
    OPERATOR_RECOVERY_CANCELLED,
    OPERATOR_RECOVERY_OPENED,
    queue_notice,
)
from sekisho.core.operators import PERSON, Actor, operator_address
from sekisho.core.policy import FailurePolicy
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, OperatorRecovery, User
from sekisho.i18n import DEFAULT_LOCALE
from sekisho.methods.recovery.operator import OperatorCodeProof, OperatorCodeSignIn, code_digest
from sekisho.policy.tiers import Policy
from sekisho.ratelimits import RateLimits
from sekisho.recovery_service import RecoverySignIn
from sekisho.store.database import Database

REASON_MIN = 10
REASON_MAX = 500
LISTED = 50
#: A case id as :meth:`OperatorRecoveryService.open` makes it (``secrets.token_hex(16)``);
#: the pages and the admin API check a path's id against it before any lookup.
CASE_ID_PATTERN = r"^[0-9a-f]{32}$"


class CaseRefused(ValueError):
    """The step is not taken; the message says why in words, and ``why`` names the
    reason for the operator pages, which say it in the reader's language: ``reason``
    (its length), ``disabled``, ``no_passkeys`` (the tier), ``pending``, ``unknown``
    (no such case), ``no_account``, ``not_operator`` (not in ``admin_emails``),
    ``own_case`` (the opener approving, on any channel), ``unattributed`` (the opener
    names no person), ``changed`` (approved or expired meanwhile), or the case's state
    (``approved``, ``used``, ``cancelled``, ``expired``)."""

    def __init__(self, explanation: str, *, why: str) -> None:
        super().__init__(explanation)
        self.why = why


class NoAccount(CaseRefused):
    """No account has that address."""

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation, why="no_account")


class NotAnOperator(CaseRefused):
    """The actor's address is not one of ``admin_emails``."""

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation, why="not_operator")


@dataclass(frozen=True, slots=True)
class ApprovedCase:
    case: OperatorRecovery
    #: The one-time code, grouped for reading aloud; shown this once.
    code: str


class OperatorRecoveryService:
    def __init__(
        self,
        *,
        database: Database,
        keys: Keyring,
        policy: Policy,
        operators: frozenset[str],
        approval_window: timedelta,
        code_lifetime: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._database = database
        self._keys = keys
        self._policy = policy
        self._operators = operators
        self._approval_window = approval_window
        self._code_lifetime = code_lifetime
        self._clock = clock

    def open(
        self, raw_email: str, reason: str, *, actor: Actor, locale: str = DEFAULT_LOCALE
    ) -> OperatorRecovery:
        """Open a case for the account with the operator's reason; it waits for a
        second operator's approval until ``approval_window`` has passed."""
        reason = " ".join(reason.split())
        if not REASON_MIN <= len(reason) <= REASON_MAX:
            raise CaseRefused(
                f"give the reason in {REASON_MIN} to {REASON_MAX} characters "
                "(how the holder asked, and how you will confirm who they are)",
                why="reason",
            )
        actor = self._person(actor)
        with self._database.transaction() as repos:
            now = self._clock()
            user = _user(repos, raw_email)
            repos.locks.hold(f"operator-recovery:{user.id}")
            if user.status != "active":
                raise CaseRefused(f"{user.email} is disabled: enable it first", why="disabled")
            tier = self._policy.tier_for(user)
            if "passkey" not in tier.methods:
                raise CaseRefused(
                    f"{user.email} is in tier {tier.name}, which allows no passkeys: a "
                    "recovery ends by adding one, so it cannot finish there",
                    why="no_passkeys",
                )
            pending = repos.operator_recoveries.pending_for(user.id, now=now)
            if pending is not None:
                raise CaseRefused(
                    f"{user.email} already has recovery {pending.id} "
                    f"({pending.state(now)} until {pending.expires_at.isoformat()})",
                    why="pending",
                )
            case = OperatorRecovery(
                id=secrets.token_hex(16),  # hex: never read as an option by a shell
                user_id=user.id,
                email=user.email,
                reason=reason,
                opened_by=actor.recorded,
                opened_at=now,
                expires_at=now + self._approval_window,
            )
            repos.operator_recoveries.open(case)
            _audit(repos, "recovery.operator.opened", "success", user, actor, now, case, reason)
            queue_notice(
                repos,
                self._keys,
                user=user,
                notice=OPERATOR_RECOVERY_OPENED,
                locale=locale,
                client=ClientInfo.of(actor.recorded, None, locale=locale),
                now=now,
                by=BY_OPERATOR,
            )
            return case

    def approve(self, case_id: str, *, actor: Actor, locale: str = DEFAULT_LOCALE) -> ApprovedCase:
        """A second operator's approval: the case's one-time code, shown this once."""
        actor = self._person(actor)
        with self._database.transaction() as repos:
            now = self._clock()
            case = repos.operator_recoveries.get(case_id)
            user = repos.users.by_id(case.user_id) if case is not None else None
            if case is None or user is None:
                raise CaseRefused(f"no recovery {case_id}", why="unknown")
            code = recovery_codes.new_code()
            digest = code_digest(self._keys, user.id, recovery_codes.ungrouped(code))
            expires_at = now + self._code_lifetime
            refusal = _approval_refusal(case, actor, now)
            if refusal is None and not repos.operator_recoveries.approve(
                case.id, by=actor.recorded, code_digest=digest, expires_at=expires_at, now=now
            ):
                refusal = ("changed", "it changed meanwhile (approved or expired)")
            if refusal is None:
                approved = replace(
                    case, approved_by=actor.recorded, approved_at=now, expires_at=expires_at
                )
                _audit(repos, "recovery.operator.approved", "success", user, actor, now, approved)
                queue_notice(
                    repos,
                    self._keys,
                    user=user,
                    notice=OPERATOR_RECOVERY_APPROVED,
                    locale=locale,
                    client=ClientInfo.of(actor.recorded, None, locale=locale),
                    now=now,
                    by=BY_OPERATOR,
                    until=expires_at.isoformat(),
                )
                return ApprovedCase(case=approved, code=code)
            # The refused attempt is recorded (the transaction commits), then refused.
            _audit(repos, "recovery.operator.approve_refused", "failure", user, actor, now, case)
        why, explanation = refusal
        raise CaseRefused(f"recovery {case_id} cannot be approved: {explanation}", why=why)

    def cancel(
        self, case_id: str, reason: str, *, actor: Actor, locale: str = DEFAULT_LOCALE
    ) -> OperatorRecovery:
        """End a case that is not used yet (any operator, for example when the holder
        says they never asked): it can no longer be approved, and its code no longer
        works."""
        reason = " ".join(reason.split())
        if not REASON_MIN <= len(reason) <= REASON_MAX:
            raise CaseRefused(
                f"give the reason in {REASON_MIN} to {REASON_MAX} characters", why="reason"
            )
        actor = self._person(actor)
        with self._database.transaction() as repos:
            now = self._clock()
            case = repos.operator_recoveries.get(case_id)
            user = repos.users.by_id(case.user_id) if case is not None else None
            if case is None or user is None:
                raise CaseRefused(f"no recovery {case_id}", why="unknown")
            if not repos.operator_recoveries.cancel(case.id, by=actor.recorded, now=now):
                state = case.state(now)
                raise CaseRefused(
                    f"recovery {case_id} cannot be cancelled: it is {state}", why=state
                )
            cancelled = replace(case, cancelled_by=actor.recorded, cancelled_at=now)
            _audit(
                repos, "recovery.operator.cancelled", "success", user, actor, now, cancelled, reason
            )
            queue_notice(
                repos,
                self._keys,
                user=user,
                notice=OPERATOR_RECOVERY_CANCELLED,
                locale=locale,
                client=ClientInfo.of(actor.recorded, None, locale=locale),
                now=now,
                by=BY_OPERATOR,
            )
            return cancelled

    def _person(self, actor: Actor) -> Actor:
        """``actor`` with its address normalised, if it is one of ``admin_emails``;
        otherwise :class:`NotAnOperator`, audited. The one check every channel's actor
        passes before a step, so that cases record people."""
        address = operator_address(actor.operator, self._operators)
        if address is not None:
            return replace(actor, operator=address)
        with self._database.transaction() as repos:
            repos.audit.append(
                AuditEvent(
                    event="recovery.operator.not_operator",
                    outcome="failure",
                    at=self._clock(),
                    ip=actor.channel,
                    detail={"channel": actor.channel, "operator": actor.operator},
                )
            )
        raise NotAnOperator(
            f"{actor.operator} is not an operator: only an address in admin_emails may "
            "open, approve or cancel a recovery"
        )

    def recent(self) -> list[OperatorRecovery]:
        """The newest cases, open or not (never a code: none is kept)."""
        with self._database.reading() as repos:
            return repos.operator_recoveries.recent(limit=LISTED)

    def now(self) -> datetime:
        return self._clock()

    def made_session(self, session_id: str) -> bool:
        """Whether an operator's one-time code made this session (the recovery pages
        then speak of that code, not of a recovery code)."""
        with self._database.reading() as repos:
            return repos.operator_recoveries.for_session(session_id) is not None


class OperatorCodeService:
    """The holder's side: the one-time code in, a recovery session out."""

    def __init__(
        self,
        *,
        database: Database,
        keys: Keyring,
        limits: RateLimits,
        completion: Completion,
        failures: FailurePolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._signin = RecoverySignIn(
            database=database,
            limits=limits,
            completion=completion,
            clock=clock,
            method=OperatorCodeSignIn(keys=keys, failures=failures),
            started=_attach_session,
        )

    def sign_in(
        self, *, raw_email: str, code: str, client: ClientInfo, previous: str | None
    ) -> IssuedSession:
        """The holder's one-time code: a restricted recovery session, or
        ``recovery_failed`` whatever was wrong."""
        return self._signin.sign_in(
            raw_email=raw_email, code=code, client=client, previous=previous
        )


def _attach_session(repos: Repositories, proof: OperatorCodeProof, issued: IssuedSession) -> None:
    """The case records the session its code made (:meth:`OperatorRecoveryService.made_session`)."""
    repos.operator_recoveries.attach_session(proof.case_id, issued.session.id)


def _approval_refusal(
    case: OperatorRecovery, actor: Actor, now: datetime
) -> tuple[str, str] | None:
    """Why ``actor`` may not approve ``case`` (the ``why`` and the words), or None: the
    one comparison of opener and approver, as people."""
    if case.opened_by == actor.recorded:
        return (
            "own_case",
            "the operator who opened it cannot approve it, on any channel: a second operator must",
        )
    if not case.opened_by.startswith(PERSON):
        return (
            "unattributed",
            f"it was opened as {case.opened_by}, which names no operator: cancel it and "
            "open a new one",
        )
    state = case.state(now)
    if state != "open":
        return (state, f"it is {state}")
    return None


def _user(repos: Repositories, raw_email: str) -> User:
    try:
        address = normalize_email(raw_email)
    except InvalidAddress as error:
        raise NoAccount(f"no account for {raw_email}") from error
    user = repos.users.by_email(address)
    if user is None:
        raise NoAccount(f"no account for {address}")
    return user


def _audit(
    repos: Repositories,
    event: str,
    outcome: str,
    user: User,
    actor: Actor,
    now: datetime,
    case: OperatorRecovery,
    reason: str | None = None,
) -> None:
    detail = {
        "by": "operator",
        "case": case.id,
        "opened_by": case.opened_by,
        "operator": actor.operator,
        "channel": actor.channel,
    }
    if case.approved_by:
        detail["approved_by"] = case.approved_by
    if case.cancelled_by:
        detail["cancelled_by"] = case.cancelled_by
    if reason is not None:
        detail["reason"] = reason
    repos.audit.append(
        AuditEvent(
            event=event,
            outcome=outcome,
            at=now,
            ip=actor.recorded,
            user_id=user.id,
            email=user.email,
            detail=detail,
        )
    )
