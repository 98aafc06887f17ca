"""Moving accounts between tiers (issue 10): by an operator's choice, or by the policy's
rules when an attribute changes. One implementation behind the CLI and the admin API
(``/api/v1/admin/users``).

Invariant: a change that would leave the account with no way in at all (no method the
tier allows and no bridge to a restricted enrolment session) is refused with the
reason, and every change that is made writes one audit event (SECURITY.md case 51).
A change of the tier in force, whether an operator set it or a rule derived it from an
attribute, is notified to the account's address in the same transaction (in the
holder's language when known, else ``locale``), and in that transaction ends every
session whose proof the new tier would not admit in full (SECURITY.md case 50: a
method the tier forbids cannot keep the account signed in either, even if it was used
before); ending them queues their back-channel logouts like any other end. An edit of
the policy file is applied the same way, once, by the first process that starts with it
(``apply_policy``), for every account that holds a session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sekisho.core.addresses import normalize_email
from sekisho.core.clients import ClientInfo
from sekisho.core.completion import standing_of
from sekisho.core.keys import Keyring
from sekisho.core.notices import BY_OPERATOR, TIER_CHANGED, queue_notice
from sekisho.core.ports import Repositories, Transactions
from sekisho.core.records import AuditEvent, Session, User
from sekisho.core.sessions import session_event
from sekisho.i18n import DEFAULT_LOCALE
from sekisho.policy.admission import Admission, admit, bridges, lockout_reason, ways_in
from sekisho.policy.assurance import Attestation, method_of
from sekisho.policy.fingerprint import fingerprint
from sekisho.policy.tiers import Policy, Tier

ACTOR_DETAIL = {"by": "operator"}
POLICY_ACTOR = "policy"  # who ends the sessions an edited policy refuses
SHOWN = 12  # fingerprint characters in the audit event


class TierRefused(ValueError):
    """The change is not made; the message says why in words."""


class NoAccount(TierRefused):
    """No account has that address."""


@dataclass(frozen=True, slots=True)
class TierChange:
    email: str
    before: str
    after: str
    ways_in: tuple[str, ...]
    bridges: tuple[str, ...]

    @property
    def restricted_next(self) -> bool:
        """The next sign-in will be restricted to enrolling a passkey."""
        return not self.ways_in


@dataclass(frozen=True, slots=True)
class UserTier:
    email: str
    tier: str
    set_tier: str | None
    attributes: dict[str, Any]


class TierService:
    def __init__(
        self,
        *,
        transactions: Transactions,
        policy: Policy,
        attestation: Attestation,
        keys: Keyring,
        clock: Callable[[], datetime],
        self_signup: bool,
    ) -> None:
        self._transactions = transactions
        self._self_signup = self_signup
        self._keys = keys
        self._policy = policy
        self._attestation = attestation
        self._clock = clock

    def show(self, raw_email: str) -> UserTier:
        """An account's tier (derived or set), the operator's choice and its attributes."""
        with self._transactions.transaction() as repos:
            user = self._user(repos, raw_email)
        return UserTier(
            email=user.email,
            tier=self._policy.tier_for(user).name,
            set_tier=user.tier,
            attributes=dict(user.attributes),
        )

    def set_tier(
        self,
        raw_email: str,
        tier: str | None,
        *,
        actor: str = "cli",
        locale: str = DEFAULT_LOCALE,
    ) -> TierChange:
        """Store an operator's tier for the account (None: the rules decide again)."""
        if tier is not None and self._policy.tier(tier) is None:
            raise TierRefused(
                f"no tier {tier!r} in the policy (tiers: {', '.join(self._policy.names())})"
            )
        with self._transactions.transaction() as repos:
            user = self._user(repos, raw_email)
            after = replace(user, tier=tier)
            change = self._change(repos, user, after)
            repos.users.set_tier(user.id, tier)
            self._record(
                repos, "account.tier_set", user, change, actor, locale, stored=tier or "(rules)"
            )
            return change

    def set_attribute(
        self,
        raw_email: str,
        name: str,
        value: Any,
        *,
        actor: str = "cli",
        locale: str = DEFAULT_LOCALE,
    ) -> TierChange:
        """Set (or with None, remove) one attribute the rules read."""
        with self._transactions.transaction() as repos:
            user = self._user(repos, raw_email)
            attributes = dict(user.attributes)
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
            after = replace(user, attributes=attributes)
            change = self._change(repos, user, after)
            repos.users.set_attributes(user.id, attributes)
            self._record(
                repos,
                "account.attribute_set",
                user,
                change,
                actor,
                locale,
                attribute=name,
                value=repr(value),
            )
            return change

    def _user(self, repos: Repositories, raw_email: str) -> User:
        user = repos.users.by_email(normalize_email(raw_email))
        if user is None:
            raise NoAccount(f"no account for {raw_email}")
        return user

    def _change(self, repos: Repositories, before: User, after: User) -> TierChange:
        old, new = self._policy.tier_for(before), self._policy.tier_for(after)
        standing = standing_of(repos, before)
        if old.name != new.name:
            reason = lockout_reason(new, standing, self._attestation, self_signup=self._self_signup)
            if reason is not None:
                raise TierRefused(f"{before.email} stays in tier {old.name}: {reason}")
        return TierChange(
            email=before.email,
            before=old.name,
            after=new.name,
            ways_in=tuple(ways_in(new, standing, self._attestation)),
            bridges=tuple(bridges(new, standing, self_signup=self._self_signup)),
        )

    def _record(
        self,
        repos: Repositories,
        event: str,
        user: User,
        change: TierChange,
        actor: str,
        locale: str,
        **detail: str,
    ) -> None:
        """What a stored change does in its transaction: the operator's ``event``; and,
        when the tier in force changes, ``account.tier_changed``, the end of the sessions
        the new tier refuses, and the holder's notice."""
        now = self._clock()
        repos.audit.append(
            AuditEvent(
                event=event,
                outcome="success",
                at=now,
                ip=actor,
                user_id=user.id,
                email=user.email,
                detail={**ACTOR_DETAIL, "from": change.before, "to": change.after, **detail},
            )
        )
        if change.before != change.after:
            repos.audit.append(
                AuditEvent(
                    event="account.tier_changed",
                    outcome="success",
                    at=now,
                    ip=actor,
                    user_id=user.id,
                    email=user.email,
                    detail={"from": change.before, "to": change.after, "notified": "email"},
                )
            )
            tier = self._policy.tier(change.after)
            if tier is not None:
                self._end_refused_sessions(repos, user, tier, actor, now)
            queue_notice(
                repos,
                self._keys,
                user=user,
                notice=TIER_CHANGED,
                locale=locale,
                client=ClientInfo.of(actor, None, locale=locale),
                now=now,
                by=BY_OPERATOR,
                before=change.before,
                after=change.after,
            )

    def apply_policy(self) -> int | None:
        """Make the weakest link hold after an edit of the policy (SECURITY.md case 50):
        when this process runs another policy than the one last applied (by
        :func:`~sekisho.policy.fingerprint.fingerprint`), claim it and, in the same
        transaction, end every session the account's tier under it would not admit in
        full, whether the edit changed the tier's rules or moved the account to another
        tier by a rule. Returns how many sessions ended; None when the policy was
        already applied (by this deployment before, or by a process starting at the
        same time)."""
        mine = fingerprint(self._policy, self._attestation)
        with self._transactions.transaction() as repos:
            now = self._clock()
            if not repos.applied_policy.claim(mine, now=now):
                return None
            ended = 0
            for user_id in repos.sessions.users_signed_in(now=now):
                user = repos.users.by_id(user_id)
                if user is not None:
                    tier = self._policy.tier_for(user)
                    ended += self._end_refused_sessions(
                        repos, user, tier, POLICY_ACTOR, now, cause="policy_changed"
                    )
            repos.audit.append(
                AuditEvent(
                    event="policy.applied",
                    outcome="success",
                    at=now,
                    ip=POLICY_ACTOR,
                    detail={
                        "fingerprint": mine[:SHOWN],
                        "source": self._policy.source,
                        "sessions_ended": ended,
                    },
                )
            )
            return ended

    def _end_refused_sessions(
        self,
        repos: Repositories,
        user: User,
        tier: Tier,
        actor: str,
        now: datetime,
        *,
        cause: str = "tier_changed",
    ) -> int:
        """End the unrestricted sessions whose proof ``tier`` would refuse or only
        restrict (a restricted session may already do no more than enrol a passkey);
        return how many ended."""
        ended = 0
        for session in repos.sessions.active_for(user.id):
            if session.restricted or self._admits(repos, user, tier, session):
                continue
            if repos.sessions.revoke(session.id, reason=cause, now=now):
                ended += 1
                repos.audit.append(
                    session_event(
                        "session.ended_by_tier",
                        session,
                        ClientInfo.of(actor, None),
                        now,
                        detail={"tier": tier.name, "cause": cause},
                    )
                )
        return ended

    def _admits(self, repos: Repositories, user: User, tier: Tier, session: Session) -> bool:
        """Whether ``tier`` would admit the session's proof in full. A session does not
        record which passkey proved it, so a passkey proof is judged by its AAL."""
        return (
            admit(
                tier,
                via=method_of(session.amr),
                aal=session.aal,
                passkey=None,
                standing=lambda: standing_of(repos, user),
                attestation=self._attestation,
                self_signup=self._self_signup,
            )
            is Admission.FULL
        )
