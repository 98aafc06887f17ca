"""The one completion step every method ends in (ARCHITECTURE.md: methods never create
sessions).

It resolves the account the proof speaks for (creating it only when self sign-up is
on), asks the policy whether the account's tier admits this proof (fully, restricted to
enrolling a passkey, or not at all: :mod:`sekisho.policy.admission`, SECURITY.md case
50), retires the pre-sign-in session (a new token at every sign-in: case 27), issues
the session with the AAL of the proof and the limits of its AAL and tier (restricted
when the proof was a recovery code: ``core/recovery.py``, case 54), notes the browser
it came from (``core/devices.py``), and writes the audit event, all inside the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sekisho.core import onetime
from sekisho.core.clients import ClientInfo
from sekisho.core.devices import NewBrowserNotices
from sekisho.core.migration import MigrationPolicy
from sekisho.core.ports import Clock, Repositories, Transactions
from sekisho.core.records import AuditEvent, Passkey, Session, User
from sekisho.core.recovery import restriction_for
from sekisho.core.sessions import SessionManager
from sekisho.errors import ErrorCode, SekishoError
from sekisho.policy.admission import ENROL_PASSKEY, Admission, Standing, admit
from sekisho.policy.assurance import AMR_EMAIL, Attestation, method_of
from sekisho.policy.tiers import Policy, Tier


class Proof(Protocol):
    """What a method proved (its fields are read-only)."""

    @property
    def email(self) -> str: ...
    @property
    def flow_id(self) -> str: ...
    @property
    def via(self) -> str: ...
    @property
    def amr(self) -> tuple[str, ...]: ...
    @property
    def aal(self) -> int: ...
    @property
    def passkey(self) -> Passkey | None:
        """The passkey that made the proof, as read when it was checked."""


@dataclass(frozen=True, slots=True)
class IssuedSession:
    token: str
    session: Session
    user: User


class Completion:
    def __init__(
        self,
        *,
        transactions: Transactions,
        clock: Clock,
        sessions: SessionManager,
        self_signup: bool,
        migration: MigrationPolicy,
        policy: Policy,
        attestation: Attestation,
        browsers: NewBrowserNotices,
        restricted_lifetime: timedelta,
    ) -> None:
        self._transactions = transactions
        self._clock = clock
        self._sessions = sessions
        self._self_signup = self_signup
        self._migration = migration
        self.policy = policy
        self._attestation = attestation
        self._browsers = browsers
        self._restricted_lifetime = restricted_lifetime

    def sign_in(
        self,
        prove: Callable[[Repositories, datetime], Proof],
        *,
        client: ClientInfo,
        previous: str | None,
    ) -> IssuedSession:
        """Run a method's proof and this completion step in one transaction."""
        with self._transactions.transaction() as repos:
            now = self._clock()
            return self.complete(
                repos, prove(repos, now), client=client, previous_token=previous, now=now
            )

    def complete(
        self,
        repos: Repositories,
        proof: Proof,
        *,
        client: ClientInfo,
        previous_token: str | None,
        now: datetime,
    ) -> IssuedSession:
        user = repos.users.by_email(proof.email)
        if user is None and self._self_signup:
            user = repos.users.create(proof.email, now=now, verified=True)
            self._audit(repos, "account.created", "success", proof, client, now, user=user)
        if user is None or user.status != "active":
            reason = "no_account" if user is None else "account_disabled"
            self._audit(
                repos, "signin.rejected", "failure", proof, client, now, user=user, reason=reason
            )
            raise SekishoError(ErrorCode.invalid_or_expired, persist=True)
        tier = self.policy.tier_for(user)
        # A recovery code never meets the tier's sign-in rules: it always leads to a
        # session that can only enrol a passkey the tier accepts (case 54).
        restriction = restriction_for(proof.via)
        admission = Admission.RESTRICTED if restriction else self._admit(repos, user, tier, proof)
        if admission is Admission.RESTRICTED and restriction is None:
            restriction = ENROL_PASSKEY
        if admission is Admission.REFUSED:
            self._audit(
                repos,
                "signin.rejected",
                "failure",
                proof,
                client,
                now,
                user=user,
                reason="tier_forbids_method",
                tier=tier.name,
            )
            # A password proof gets the same answer as a wrong password: the refusal must
            # not tell a holder of a leaked password that it was right (case 50).
            code = (
                ErrorCode.invalid_credentials
                if method_of(proof.amr) == "password"
                else ErrorCode.signin_method_not_allowed
            )
            raise SekishoError(code, persist=True)
        if previous_token:
            stale = repos.sessions.by_token(self._sessions.token_digest(previous_token))
            if stale is not None and repos.sessions.revoke(
                stale.id, reason="replaced_at_sign_in", now=now
            ):
                self._audit(
                    repos,
                    "session.replaced",
                    "success",
                    proof,
                    client,
                    now,
                    user=user,
                    replaced_session=stale.id,
                )
        token = onetime.new_session_token()
        lifetime = self._sessions.timeouts.absolute(proof.aal)
        if tier.absolute_timeout is not None:
            lifetime = min(lifetime, tier.absolute_timeout)
        if restriction is not None:
            lifetime = min(lifetime, self._restricted_lifetime)
        session = Session(
            id=onetime.new_flow_id(),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            auth_time=now,
            expires_at=now + lifetime,
            ip=client.ip,
            user_agent=client.user_agent,
            amr=proof.amr,
            aal=proof.aal,
            restriction=restriction,
            idle_limit=tier.idle_timeout,
        )
        repos.sessions.create(session, token_digest=self._sessions.token_digest(token))
        self._browsers.observe(repos, user, session, client, now)
        repos.users.mark_signed_in(
            user.id, now=now, email_proven=AMR_EMAIL in proof.amr, locale=client.locale
        )
        if proof.via != "password" and restriction is None:
            self._migration.retire_if_phasing_out(
                repos, user, because=f"signin:{proof.via}", client=client, now=now
            )
        self._audit(
            repos,
            "signin.restricted" if restriction == ENROL_PASSKEY else "signin.succeeded",
            "success",
            proof,
            client,
            now,
            user=user,
            session=session,
            tier=tier.name,
        )
        return IssuedSession(token=token, session=session, user=user)

    def _admit(self, repos: Repositories, user: User, tier: Tier, proof: Proof) -> Admission:
        return admit(
            tier,
            via=method_of(proof.amr),
            aal=proof.aal,
            passkey=proof.passkey,
            standing=lambda: standing_of(repos, user),
            attestation=self._attestation,
            self_signup=self._self_signup,
        )

    @staticmethod
    def _audit(
        repos: Repositories,
        event: str,
        outcome: str,
        proof: Proof,
        client: ClientInfo,
        now: datetime,
        *,
        user: User | None,
        session: Session | None = None,
        **extra: str,
    ) -> None:
        detail = {"via": proof.via, **extra}
        repos.audit.append(
            AuditEvent(
                event=event,
                outcome=outcome,
                at=now,
                ip=client.ip,
                user_agent=client.user_agent,
                user_id=user.id if user else None,
                email=proof.email,
                session_id=session.id if session else None,
                flow_id=proof.flow_id,
                amr=proof.amr,
                aal=proof.aal,
                detail=detail,
            )
        )


def standing_of(repos: Repositories, user: User) -> Standing:
    """What ``user`` holds, as the tier's admission reads it: its passkeys and whether a
    password is stored."""
    return Standing(
        passkeys=tuple(repos.passkeys.for_user(user.id)),
        has_password=repos.passwords.get(user.id) is not None,
    )
