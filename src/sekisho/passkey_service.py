"""Passkey operations for the pages and the JSON API: one implementation behind both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from sekisho.core.addresses import InvalidAddress, normalize_email
from sekisho.core.clients import ClientInfo
from sekisho.core.completion import Completion, IssuedSession
from sekisho.core.keys import Keyring
from sekisho.core.migration import MigrationPolicy
from sekisho.core.notices import PASSKEY_ADDED, PASSKEY_REMOVED, queue_notice
from sekisho.core.policy import recently_authenticated
from sekisho.core.ports import Repositories
from sekisho.core.records import Passkey, Session, User
from sekisho.core.recovery import RecoveryRules, is_recovery
from sekisho.core.sessions import session_event
from sekisho.errors import ErrorCode, SekishoError
from sekisho.methods.passkey.authentication import PasskeySignIn
from sekisho.methods.passkey.ceremony import StartedCeremony
from sekisho.methods.passkey.registration import (
    PASSKEYS_PER_ACCOUNT,
    PasskeyRegistration,
    clean_name,
)
from sekisho.methods.passkey.relying_party import RelyingParty
from sekisho.policy.admission import (
    Standing,
    accepts_passkey,
    qualifying_passkeys,
    removal_reason,
)
from sekisho.policy.assurance import (
    AAL1,
    AMR_PASSWORD,
    Attestation,
    highest_aal,
    stored_passkey_aal,
)
from sekisho.ratelimits import RateLimits
from sekisho.settings import Settings
from sekisho.store.database import Database


def relying_party_from(settings: Settings) -> RelyingParty:
    return RelyingParty(
        rp_id=settings.rp_id,
        name=settings.webauthn_rp_name,
        origins=tuple(settings.allowed_origins),
        user_verification=settings.passkey_user_verification,
        attestation=settings.passkey_attestation,
        trust_roots=(
            tuple(Path(path).read_bytes() for path in settings.passkey_trust_roots)
            if settings.passkey_attestation == "direct"
            else ()
        ),
        aaguid_allowlist=frozenset(settings.passkey_aaguid_allowlist),
        sign_count_policy=settings.passkey_sign_count_policy,
        challenge_ttl=settings.passkey_challenge_ttl,
    )


class Change(Enum):
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class Freshness:
    may_add: bool
    may_remove: bool


class PasskeyService:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        keys: Keyring,
        limits: RateLimits,
        completion: Completion,
        migration: MigrationPolicy,
        recovery: RecoveryRules,
        clock: Callable[[], datetime],
    ) -> None:
        self._migration = migration
        self._recovery = recovery
        self.relying_party = relying_party_from(settings)
        self.attestation = Attestation(self.relying_party.aaguid_allowlist)
        self._settings = settings
        self._database = database
        self._keys = keys
        self._limits = limits
        self._completion = completion
        self._clock = clock
        self._registration = PasskeyRegistration(keys=keys, relying_party=self.relying_party)
        self._signin = PasskeySignIn(keys=keys, relying_party=self.relying_party)

    # -- sign-in ----------------------------------------------------------------------

    def begin_sign_in(
        self, *, raw_email: str | None, binding: str, client: ClientInfo
    ) -> StartedCeremony:
        """Every sign-in page load starts one (autofill), so it has its own per-IP limit."""
        self._limits.hit(self._limits.ceremonies_per_ip, client.ip)
        email = None
        if raw_email is not None:
            try:
                email = normalize_email(raw_email)
            except InvalidAddress as error:
                raise SekishoError(ErrorCode.invalid_email) from error
        with self._database.transaction() as repos:
            return self._signin.begin(
                repos, email=email, binding=binding, client=client, now=self._clock()
            )

    def finish_sign_in(
        self,
        *,
        flow_id: str,
        credential: dict[str, Any],
        binding: str | None,
        client: ClientInfo,
        previous: str | None,
    ) -> IssuedSession:
        self._limits.hit_verification(client.ip)
        return self._completion.sign_in(
            lambda repos, now: self._signin.finish(
                repos,
                flow_id=flow_id,
                credential=credential,
                binding=binding,
                client=client,
                now=now,
            ),
            client=client,
            previous=previous,
        )

    # -- registration and management ------------------------------------------------

    def begin_registration(
        self, session: Session, *, binding: str, client: ClientInfo
    ) -> StartedCeremony:
        self._limits.hit(self._limits.ceremonies_per_ip, client.ip)
        with self._database.transaction() as repos:
            now = self._clock()
            user = self._fresh_user(repos, session, now, Change.ADD)
            self._ensure_room(repos, session, client)
            return self._registration.begin(
                repos, user=user, binding=binding, client=client, now=now
            )

    def finish_registration(
        self,
        session: Session,
        *,
        flow_id: str,
        credential: dict[str, Any],
        name: str | None,
        binding: str | None,
        locale: str,
        client: ClientInfo,
    ) -> Passkey:
        with self._database.transaction() as repos:
            now = self._clock()
            user = self._fresh_user(repos, session, now, Change.ADD)
            self._ensure_room(repos, session, client)
            tier = self._completion.policy.tier_for(user)
            registered = self._registration.finish(
                repos,
                accept=lambda passkey: accepts_passkey(
                    tier,
                    passkey,
                    self.attestation,
                    aal=stored_passkey_aal(passkey, self.attestation),
                ),
                user=user,
                flow_id=flow_id,
                credential=credential,
                name=name,
                binding=binding,
                client=client,
                now=now,
            )
            if is_recovery(session):
                self._recovery.complete(
                    repos, session, user, registered.passkey, locale=locale, client=client, now=now
                )
            else:
                queue_notice(
                    repos,
                    self._keys,
                    user=user,
                    notice=PASSKEY_ADDED,
                    locale=locale,
                    client=client,
                    now=now,
                    name=registered.passkey.name,
                )
            self._migration.retire_if_phasing_out(
                repos, user, because="passkey_added", client=client, now=now
            )
            return registered.passkey

    def enrolled(self, session: Session) -> bool:
        """The account holds a passkey its tier accepts (a restricted session's
        enrolment is done; signing in with that passkey issues the full session)."""
        with self._database.reading() as repos:
            if repos.users.by_id(session.user_id) is None:
                return False
            registered = repos.passkeys.for_user(session.user_id)
            return self._enrolment_done(repos, session, registered)

    def passkeys_of(self, session: Session) -> list[Passkey]:
        with self._database.reading() as repos:
            return repos.passkeys.for_user(session.user_id)

    def rename(self, session: Session, passkey_id: str, name: str, client: ClientInfo) -> None:
        cleaned = clean_name(name)
        if not cleaned:
            raise SekishoError(ErrorCode.invalid_field, detail={"field": "name"})
        with self._database.transaction() as repos:
            if not repos.passkeys.rename(session.user_id, passkey_id, cleaned):
                raise SekishoError(ErrorCode.not_found)
            self._audit(repos, "passkey.renamed", session, client, passkey=passkey_id)

    def remove(
        self, session: Session, passkey_id: str, *, locale: str, client: ClientInfo
    ) -> Passkey:
        """Delete a passkey after a fresh sign-in, unless a recent recovery holds such
        changes or it is the last way in the account's tier allows (SECURITY.md case
        51: refused, and audited)."""
        with self._database.transaction() as repos:
            now = self._clock()
            user = self._fresh_user(repos, session, now, Change.REMOVE)
            self._recovery.ensure_no_hold(repos, user.id, now=now)
            registered = repos.passkeys.for_user(user.id)
            target = next((p for p in registered if p.id == passkey_id), None)
            if target is None:
                raise SekishoError(ErrorCode.not_found)
            tier = self._completion.policy.tier_for(user)
            standing = Standing(
                passkeys=tuple(registered), has_password=repos.passwords.get(user.id) is not None
            )
            reason = removal_reason(tier, standing, target, self.attestation)
            if reason is not None:
                self._audit(
                    repos,
                    "passkey.removal_refused",
                    session,
                    client,
                    outcome="failure",
                    passkey=target.id,
                    reason="last_way_in",
                    tier=tier.name,
                )
                raise SekishoError(ErrorCode.last_way_in, persist=True)
            removed = repos.passkeys.remove(user.id, passkey_id)
            if removed is None:
                raise SekishoError(ErrorCode.not_found)
            self._audit(repos, "passkey.removed", session, client, passkey=removed.id)
            queue_notice(
                repos,
                self._keys,
                user=user,
                notice=PASSKEY_REMOVED,
                locale=locale,
                client=client,
                now=now,
                name=removed.name,
            )
            return removed

    @staticmethod
    def at_limit(registered: Sequence[Passkey]) -> bool:
        """The account holds as many passkeys as it may (the account page says so)."""
        return len(registered) >= PASSKEYS_PER_ACCOUNT

    def freshness(self, session: Session, registered: Sequence[Passkey]) -> Freshness:
        """What the session is fresh enough for right now, given the account's passkeys
        (drives the account page, which has already loaded them)."""
        now = self._clock()
        return Freshness(
            may_add=self._is_fresh(session, registered, now, Change.ADD),
            may_remove=self._is_fresh(session, registered, now, Change.REMOVE),
        )

    def _is_fresh(
        self, session: Session, registered: Sequence[Passkey], now: datetime, change: Change
    ) -> bool:
        """Adding needs a fresh proof at the account's highest level (NIST SP 800-63B-4
        §4.1.2.1). Removing needs a fresh proof at the level the account can sign in
        with at all: email sign-in is still a way in, so someone holding only the mailbox
        gains nothing from it, while the owner can evict a passkey an intruder added.
        A session made by the legacy password can do neither: a leaked old password
        must not become a lasting passkey, nor strip the owner's. A restricted session
        (its tier wants a passkey the account lacks) may only add one, while it lasts."""
        if AMR_PASSWORD in session.amr:
            return False
        if session.restricted:
            return change is Change.ADD and recently_authenticated(
                session,
                required_aal=session.aal,
                window=self._settings.reauthentication_window,
                now=now,
            )
        required = AAL1
        if change is Change.ADD:
            required = highest_aal(registered, self.attestation)
        return recently_authenticated(
            session, required_aal=required, window=self._settings.reauthentication_window, now=now
        )

    def _ensure_room(self, repos: Repositories, session: Session, client: ClientInfo) -> None:
        """Refuse a passkey past ``PASSKEYS_PER_ACCOUNT`` (``passkey_limit_reached``,
        audited), counting under the account's lock so that two ceremonies finishing at
        once cannot both take the last place. A restricted session (a recovery, or a
        tier's enrolment) is not held to it: it may not remove a passkey, so a refusal
        would leave the owner no way in. The exemption is bounded: a restricted session
        enrols one passkey and no more (a recovery's is completed by it; a tier's
        enrolment is done once the account holds a passkey the tier accepts), and full
        sessions of that account then add none until it is back under the cap."""
        repos.locks.hold(f"passkeys:{session.user_id}")
        registered = repos.passkeys.for_user(session.user_id)
        if session.restricted:
            if not is_recovery(session) and self._enrolment_done(repos, session, registered):
                raise SekishoError(ErrorCode.session_restricted)
            return
        if len(registered) >= PASSKEYS_PER_ACCOUNT:
            self._audit(
                repos,
                "passkey.registration.failed",
                session,
                client,
                outcome="failure",
                reason="passkey_limit_reached",
            )
            raise SekishoError(
                ErrorCode.passkey_limit_reached,
                persist=True,
                detail={"limit": PASSKEYS_PER_ACCOUNT},
            )

    def _enrolment_done(
        self, repos: Repositories, session: Session, registered: Sequence[Passkey]
    ) -> bool:
        """The account already holds a passkey its tier accepts: the enrolment this
        restricted session exists for is done, and signing in with it gives the full
        session."""
        user = repos.users.by_id(session.user_id)
        if user is None:
            return True
        tier = self._completion.policy.tier_for(user)
        return bool(qualifying_passkeys(tier, registered, self.attestation))

    def _fresh_user(
        self, repos: Repositories, session: Session, now: datetime, change: Change
    ) -> User:
        """The session's user, if the session may make ``change`` now. A recovery
        session may only add the one passkey that completes its recovery."""
        user = repos.users.by_id(session.user_id)
        if user is None:
            raise SekishoError(ErrorCode.not_authenticated)
        if is_recovery(session):
            if change is Change.ADD and self._recovery.may_enrol(repos, session, now=now):
                return user
            raise SekishoError(ErrorCode.session_restricted)
        if not self._is_fresh(session, repos.passkeys.for_user(user.id), now, change):
            raise SekishoError(ErrorCode.reauthentication_required)
        return user

    def _audit(
        self,
        repos: Repositories,
        event: str,
        session: Session,
        client: ClientInfo,
        *,
        outcome: str = "success",
        **detail: str,
    ) -> None:
        repos.audit.append(
            session_event(event, session, client, self._clock(), outcome=outcome, detail=detail)
        )
