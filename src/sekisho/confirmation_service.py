"""Transaction confirmations (issue 10, SECURITY.md cases 52 and 53): one implementation
behind the first-party API and the confirmation page.

1. The application asks with the person's access token (RFC 6750 Bearer; RFC 9068): the
   token names the client (the confirmation's audience), the person and the Sekisho
   session, and the grant behind it holds that session's ``acr`` and ``auth_time``. A
   session too weak or too old for the tier's ``step_up`` is refused with the RFC 9470
   requirement instead.
2. The person confirms on Sekisho's page, signed in as the same person, with a passkey
   that verifies the user; the challenge binds the transaction.
3. The application fetches the signed confirmation and redeems it once (HTTP Basic
   client authentication); another action, other details, a second use, another client
   or an expired confirmation is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NoReturn

from sekisho.core.clients import ClientInfo
from sekisho.core.records import AuditEvent, Passkey, Session, User
from sekisho.core.sessions import session_event
from sekisho.errors import ErrorCode, SekishoError
from sekisho.methods.passkey.ceremony import StartedCeremony
from sekisho.methods.passkey.transaction import PasskeyConfirmation
from sekisho.oidc import assurance, signing_keys, subjects
from sekisho.oidc.clients import basic_credentials, redirect_uri_matches, secret_digest
from sekisho.oidc.confirmation_token import confirmation_token
from sekisho.oidc.grant_events import grant_event
from sekisho.oidc.provider import Provider, SessionLookup
from sekisho.oidc.records import Client, Grant
from sekisho.policy.actions import Action, DetailsError
from sekisho.policy.admission import qualifying_passkeys
from sekisho.policy.assurance import stored_passkey_aal
from sekisho.policy.confirmations import (
    Confirmation,
    Requirement,
    canonical,
    details_hash,
    requirement,
    unmet,
)
from sekisho.store.confirmations import SqlConfirmations
from sekisho.store.oidc import SqlOidc
from sekisho.store.repositories import SqlRepositories


@dataclass(frozen=True, slots=True)
class StepUpRequired:
    """RFC 9470 §3: what the application must ask for in a new authorization request."""

    acr_values: str
    max_age: int | None


@dataclass(frozen=True, slots=True)
class PageView:
    confirmation: Confirmation
    action: Action
    client_name: str
    status: str
    can_confirm: bool


class ConfirmationService:
    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._sekisho = provider.sekisho
        self._database = provider.database
        self._settings = provider.sekisho.settings
        self._policy = provider.sekisho.completion.policy
        self._passkeys = provider.sekisho.passkeys
        self._passkey = PasskeyConfirmation(
            keys=provider.keys, relying_party=self._passkeys.relying_party
        )

    def url(self, confirmation_id: str) -> str:
        return f"{self._settings.public_origin}/confirm/{confirmation_id}"

    # -- the application asks ----------------------------------------------------------

    def create(
        self,
        bearer: str,
        *,
        action_name: str,
        details: Mapping[str, Any],
        return_uri: str | None,
        client_info: ClientInfo,
    ) -> Confirmation:
        with self._database.transaction() as repos:
            store = SqlOidc(repos.connection)
            now = self._provider.clock()
            grant = self._grant(store, bearer, now)
            client = store.client(grant.client_id)
            user, hold = repos.users.by_id_and_hold(grant.user_id, now=now)
            if client is None or client.public or user is None or user.status != "active":
                raise SekishoError(ErrorCode.access_token_invalid)
            action = self._policy.action(action_name)
            if action is None:
                raise SekishoError(ErrorCode.unknown_action, detail={"action": action_name[:32]})
            try:
                checked = action.check(dict(details))
            except DetailsError as error:
                raise SekishoError(
                    ErrorCode.invalid_details, detail={"field": error.field, "reason": error.reason}
                ) from error
            if return_uri is not None and not redirect_uri_matches(client, return_uri):
                raise SekishoError(ErrorCode.invalid_return_uri)
            needed = requirement(self._policy.tier_for(user), action.name)
            aal = assurance.RANK.get(grant.acr, 1)
            if unmet(needed, aal=aal, auth_time=grant.auth_time, now=now):
                challenge = self._step_up(needed)
                self._audit_grant(
                    repos,
                    "confirmation.step_up_required",
                    "failure",
                    grant,
                    client_info,
                    now,
                    action=action.name,
                    acr=grant.acr,
                    acr_values=challenge.acr_values,
                    max_age=str(challenge.max_age) if challenge.max_age is not None else "",
                )
                detail: dict[str, int | str] = {"acr_values": challenge.acr_values}
                if challenge.max_age is not None:
                    detail["max_age"] = challenge.max_age
                raise SekishoError(
                    ErrorCode.insufficient_user_authentication, persist=True, detail=detail
                )
            if hold is not None:
                self._audit_grant(
                    repos,
                    "confirmation.refused",
                    "failure",
                    grant,
                    client_info,
                    now,
                    action=action.name,
                    reason="recovery_hold",
                )
                raise SekishoError(
                    ErrorCode.recovery_hold, persist=True, detail={"until": hold.isoformat()}
                )
            confirmation = Confirmation(
                id=secrets.token_urlsafe(32),
                client_id=client.id,
                user_id=user.id,
                session_id=grant.session_id,
                action=action.name,
                details=checked,
                details_hash=details_hash(checked),
                return_uri=return_uri,
                created_at=now,
                expires_at=now + self._settings.confirmation_request_lifetime,
            )
            SqlConfirmations(repos.connection).add(
                confirmation, canonical_details=canonical(checked).decode()
            )
            self._audit_grant(
                repos,
                "confirmation.requested",
                "success",
                grant,
                client_info,
                now,
                confirmation=confirmation.id,
                action=action.name,
                details_hash=confirmation.details_hash,
            )
            return confirmation

    def _grant(self, store: SqlOidc, bearer: str, now: datetime) -> Grant:
        """The live grant behind a valid access token, whose session still stands."""
        bearing = self._provider.bearer_grant(store, bearer, now)
        if bearing is None:
            raise SekishoError(ErrorCode.access_token_invalid)
        grant, _claims = bearing
        return grant

    @staticmethod
    def _step_up(needed: Requirement) -> StepUpRequired:
        return StepUpRequired(
            acr_values=assurance.acr_of_level(needed.aal),
            max_age=int(needed.max_age.total_seconds()) if needed.max_age is not None else None,
        )

    # -- the person confirms -------------------------------------------------------------

    def page(self, confirmation_id: str, session: Session) -> PageView:
        """What the confirmation page shows to the person it is for (anyone else, and
        an unknown id, get the same ``confirmation_unknown``)."""
        with self._database.reading() as repos:
            now = self._provider.clock()
            confirmation, user, _hold = self._mine(repos, confirmation_id, session, now)
            action = self._action(confirmation)
            client = SqlOidc(repos.connection).client(confirmation.client_id)
            return PageView(
                confirmation=confirmation,
                action=action,
                client_name=client.name if client else confirmation.client_id,
                status=confirmation.status(now),
                can_confirm=bool(self._confirming_passkeys(repos, user, confirmation)),
            )

    def begin(
        self,
        confirmation_id: str,
        lookup: SessionLookup,
        *,
        binding: str,
        client_info: ClientInfo,
    ) -> StartedCeremony:
        """The options that confirm, for the person signed in (``lookup`` finds their
        session in this step's own transaction)."""
        limits = self._sekisho.limits
        limits.hit(limits.ceremonies_per_ip, client_info.ip)
        with self._database.transaction() as repos:
            now = self._provider.clock()
            session = self._signed_in(repos, lookup, now)
            confirmation, user, hold = self._mine(repos, confirmation_id, session, now)
            self._ensure_pending(confirmation, now)
            self._ensure_not_held(repos, confirmation, hold, session, client_info, now)
            passkeys = self._confirming_passkeys(repos, user, confirmation)
            if not passkeys:
                raise SekishoError(ErrorCode.confirmation_passkey_required)
            return self._passkey.begin(
                repos,
                user=user,
                passkeys=passkeys,
                transaction=confirmation.transaction(),
                binding=binding,
                client=client_info,
                now=now,
            )

    def finish(
        self,
        confirmation_id: str,
        lookup: SessionLookup,
        *,
        flow_id: str,
        credential: dict[str, Any],
        binding: str | None,
        client_info: ClientInfo,
    ) -> Confirmation:
        self._sekisho.limits.hit_verification(client_info.ip)
        with self._database.transaction() as repos:
            now = self._provider.clock()
            session = self._signed_in(repos, lookup, now)
            confirmation, user, hold = self._mine(repos, confirmation_id, session, now)
            self._ensure_pending(confirmation, now)
            self._ensure_not_held(repos, confirmation, hold, session, client_info, now)
            # Any passkey of the person's that the tier accepts may answer; one below the
            # action's level is refused after its assertion verified, as ``aal_too_low``
            # (docs/flows/step-up.md), not as a stranger's credential.
            allowed = self._accepted_passkeys(repos, user)
            proof = self._passkey.finish(
                repos,
                user=user,
                allowed=allowed,
                transaction=confirmation.transaction(),
                flow_id=flow_id,
                credential=credential,
                binding=binding,
                client=client_info,
                now=now,
            )
            needed = self._requirement(user, confirmation)
            if proof.assurance.aal < needed.confirming_aal:
                repos.audit.append(
                    session_event(
                        "confirmation.passkey.failed",
                        session,
                        client_info,
                        now,
                        outcome="failure",
                        detail={"confirmation": confirmation.id, "reason": "aal_too_low"},
                    )
                )
                raise SekishoError(ErrorCode.passkey_rejected, persist=True)
            acr = assurance.acr_for(amr=proof.assurance.amr, aal=proof.assurance.aal)
            expires_at = now + self._settings.confirmation_lifetime
            store = SqlOidc(repos.connection)
            key = signing_keys.signing_key(store.signing_keys(), now)
            if key is None:
                raise RuntimeError("no signing key: the provider was not started")
            audience = store.client(confirmation.client_id)
            if audience is None:
                raise SekishoError(ErrorCode.confirmation_unknown)
            token = confirmation_token(
                issuer=self._provider.issuer,
                confirmation=confirmation,
                subject=subjects.subject(self._provider.keys, audience, confirmation.user_id),
                acr=acr,
                amr=proof.assurance.amr,
                key=key,
                private=self._provider.private_keys.open(key),
                now=now,
                expires_at=expires_at,
            )
            if not SqlConfirmations(repos.connection).confirm(
                confirmation.id,
                now=now,
                expires_at=expires_at,
                passkey_id=proof.passkey.id,
                acr=acr,
                amr=proof.assurance.amr,
                token=token,
            ):
                raise SekishoError(ErrorCode.confirmation_used)
            confirmed = session_event(
                "confirmation.confirmed",
                session,
                client_info,
                now,
                detail={
                    "confirmation": confirmation.id,
                    "client_id": confirmation.client_id,
                    "action": confirmation.action,
                    "details_hash": confirmation.details_hash,
                    "passkey": proof.passkey.id,
                    "acr": acr,
                },
            )
            # The event records the confirming proof's assurance, not the session's.
            repos.audit.append(replace(confirmed, amr=proof.assurance.amr, aal=proof.assurance.aal))
            return confirmation

    @staticmethod
    def _signed_in(repos: SqlRepositories, lookup: SessionLookup, now: datetime) -> Session:
        """The person's live, unrestricted session; a timed-out one's revocation is
        kept (committed with the refusal), as when it is looked up on its own."""
        session = lookup(repos, now)
        if session is None:
            raise SekishoError(ErrorCode.not_authenticated, persist=True)
        return session

    def _mine(
        self, repos: SqlRepositories, confirmation_id: str, session: Session, now: datetime
    ) -> tuple[Confirmation, User, datetime | None]:
        """The person's own confirmation, the person, and the end of their recovery hold
        running at ``now`` (read with the person, in the same statement)."""
        confirmation = SqlConfirmations(repos.connection).get(confirmation_id)
        user, hold = repos.users.by_id_and_hold(session.user_id, now=now)
        if confirmation is None or user is None or confirmation.user_id != user.id:
            raise SekishoError(ErrorCode.confirmation_unknown)
        return confirmation, user, hold

    @staticmethod
    def _ensure_pending(confirmation: Confirmation, now: datetime) -> None:
        status = confirmation.status(now)
        if status == "expired":
            raise SekishoError(ErrorCode.confirmation_expired)
        if status != "pending":
            raise SekishoError(ErrorCode.confirmation_used)

    @staticmethod
    def _ensure_not_held(
        repos: SqlRepositories,
        confirmation: Confirmation,
        hold: datetime | None,
        session: Session,
        client_info: ClientInfo,
        now: datetime,
    ) -> None:
        """SECURITY.md case 54: no confirmation while sensitive actions are on hold after
        a recovery, including one asked for before the recovery (first-party or RAR),
        which the recovered session could otherwise confirm. ``hold`` is the person's,
        read in this step's transaction (:meth:`_mine`): each step checks it anew."""
        if hold is None:
            return
        repos.audit.append(
            session_event(
                "confirmation.refused",
                session,
                client_info,
                now,
                outcome="failure",
                detail={
                    "client_id": confirmation.client_id,
                    "confirmation": confirmation.id,
                    "action": confirmation.action,
                    "reason": "recovery_hold",
                },
            )
        )
        raise SekishoError(
            ErrorCode.recovery_hold, persist=True, detail={"until": hold.isoformat()}
        )

    def _action(self, confirmation: Confirmation) -> Action:
        action = self._policy.action(confirmation.action)
        if action is None:  # the policy file changed since the request
            raise SekishoError(ErrorCode.unknown_action, detail={"action": confirmation.action})
        return action

    def _requirement(self, user: User, confirmation: Confirmation) -> Requirement:
        return requirement(self._policy.tier_for(user), confirmation.action)

    def _confirming_passkeys(
        self, repos: SqlRepositories, user: User, confirmation: Confirmation
    ) -> list[Passkey]:
        """The account's passkeys its tier accepts that reach the confirming level with
        user verification."""
        needed = self._requirement(user, confirmation).confirming_aal
        return [
            passkey
            for passkey in self._accepted_passkeys(repos, user)
            if stored_passkey_aal(passkey, self._passkeys.attestation) >= needed
        ]

    def _accepted_passkeys(self, repos: SqlRepositories, user: User) -> list[Passkey]:
        """The account's passkeys that verify the user and its tier accepts."""
        tier = self._policy.tier_for(user)
        attestation = self._passkeys.attestation
        return [
            passkey
            for passkey in qualifying_passkeys(tier, repos.passkeys.for_user(user.id), attestation)
            if passkey.user_verified
        ]

    # -- the application collects and redeems ------------------------------------------

    def collect(self, confirmation_id: str, authorization: str) -> tuple[Confirmation, str]:
        """The confirmation for its own client, and its status now."""
        with self._database.reading() as repos:
            client = self._client(SqlOidc(repos.connection), authorization)
            confirmation = SqlConfirmations(repos.connection).get(confirmation_id)
            if confirmation is None or confirmation.client_id != client.id:
                raise SekishoError(ErrorCode.confirmation_unknown)
            return confirmation, confirmation.status(self._provider.clock())

    def redeem(
        self,
        confirmation_id: str,
        authorization: str,
        *,
        action_name: str,
        details: Mapping[str, Any],
        client_info: ClientInfo,
    ) -> Confirmation:
        """Spend the confirmation once, for exactly the action and details it was given
        for; a mismatch spends it too (the application is about to do something the
        person did not confirm)."""
        with self._database.transaction() as repos:
            now = self._provider.clock()
            client = self._client(SqlOidc(repos.connection), authorization)
            confirmations = SqlConfirmations(repos.connection)
            spent = confirmations.redeem(confirmation_id, client_id=client.id, now=now)
            if spent is None:
                self._refuse_redemption(
                    repos, confirmations.get(confirmation_id), client, client_info, now
                )
            if spent.action != action_name or not _same_details(spent.details_hash, details):
                self._audit_redemption(
                    repos, spent, client, client_info, now, "failure", reason="mismatch"
                )
                raise SekishoError(ErrorCode.confirmation_mismatch, persist=True)
            self._audit_redemption(repos, spent, client, client_info, now, "success")
            return spent

    def _refuse_redemption(
        self,
        repos: SqlRepositories,
        found: Confirmation | None,
        client: Client,
        client_info: ClientInfo,
        now: datetime,
    ) -> NoReturn:
        if found is None or found.client_id != client.id:
            raise SekishoError(ErrorCode.confirmation_unknown)
        status = found.status(now)
        code = {
            "redeemed": ErrorCode.confirmation_used,
            "expired": ErrorCode.confirmation_expired,
        }.get(status, ErrorCode.confirmation_pending)
        self._audit_redemption(repos, found, client, client_info, now, "failure", reason=status)
        raise SekishoError(code, persist=True)

    def _client(self, store: SqlOidc, authorization: str) -> Client:
        """A confidential client authenticated with HTTP Basic (RFC 6749 §2.3.1), whatever
        method it uses at the token endpoint."""
        client_id, secret = basic_credentials(authorization)
        client = store.client(str(client_id)) if client_id else None
        if (
            client is None
            or client.secret_digest is None
            or secret is None
            or not secrets.compare_digest(
                secret_digest(self._provider.keys, client.id, str(secret)), client.secret_digest
            )
        ):
            raise SekishoError(ErrorCode.client_authentication_failed)
        return client

    # -- audit -----------------------------------------------------------------------

    @staticmethod
    def _audit_grant(
        repos: SqlRepositories,
        event: str,
        outcome: str,
        grant: Grant,
        client_info: ClientInfo,
        now: datetime,
        **detail: str,
    ) -> None:
        repos.audit.append(
            grant_event(
                event,
                grant,
                client_info,
                now,
                outcome=outcome,
                detail={"client_id": grant.client_id, **detail},
            )
        )

    @staticmethod
    def _audit_redemption(
        repos: SqlRepositories,
        confirmation: Confirmation,
        client: Client,
        client_info: ClientInfo,
        now: datetime,
        outcome: str,
        **detail: str,
    ) -> None:
        repos.audit.append(
            AuditEvent(
                event="confirmation.redeemed" if outcome == "success" else "confirmation.refused",
                outcome=outcome,
                at=now,
                ip=client_info.ip,
                user_agent=client_info.user_agent,
                user_id=confirmation.user_id,
                session_id=confirmation.session_id,
                detail={
                    "client_id": client.id,
                    "confirmation": confirmation.id,
                    "action": confirmation.action,
                    **detail,
                },
            )
        )


def _same_details(expected_hash: str, details: Mapping[str, Any]) -> bool:
    """The presented details hash as the confirmed ones did (any JSON object; a shape
    that cannot even be canonicalised never matches)."""
    try:
        presented = details_hash(dict(details))
    except Exception:
        return False
    return secrets.compare_digest(presented, expected_hash)
