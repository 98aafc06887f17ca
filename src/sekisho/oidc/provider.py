"""The provider's operations, each one transaction: authorize, resume after sign-in,
consent, exchange a code, answer UserInfo. The web modules only translate HTTP.

The session's facts come from :class:`sekisho.core.records.Session` as the pages'
session core returns it; a grant freezes them (``auth_time``, ``amr``, ``acr``, ``sid``)
for the tokens it issues, and every token ends with its grant, its session and its
client.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.fernet import InvalidToken

from sekisho.core.clients import ClientInfo
from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent, Session, User
from sekisho.core.sessions import session_event
from sekisho.oidc import (
    assurance,
    authorization_details,
    client_assertion,
    clients,
    refresh,
    requests,
    signing_keys,
    subjects,
    tokens,
)
from sekisho.oidc.client_assertion import AssertionRefused
from sekisho.oidc.clients import (
    Credentials,
    authenticate,
    presented_credentials,
    redirect_uri_matches,
)
from sekisho.oidc.errors import AuthorizationPageError, OAuthError
from sekisho.oidc.grant_events import grant_event
from sekisho.oidc.metadata_fetch import FetchFailure, MetadataFetcher
from sekisho.oidc.records import AuthorizationRequest, Client, Grant, SessionActivity, SigningKey
from sekisho.oidc.remote_jwks import RemoteKeySets
from sekisho.policy.assurance import Attestation, highest_aal
from sekisho.policy.confirmations import Confirmation
from sekisho.service import Sekisho
from sekisho.store.confirmations import SqlConfirmations
from sekisho.store.database import Database
from sekisho.store.oidc import SqlOidc
from sekisho.store.oidc_tokens import SqlOidcTokens
from sekisho.store.repositories import SqlRepositories

log = logging.getLogger("sekisho.oidc")
PENDING_PURPOSE = "oidc-pending-request"
CODE_PURPOSE = "oidc-authorization-code"
PENDING_LIFETIME = timedelta(minutes=30)
CODE_LIFETIME = timedelta(seconds=60)
PUSHED_PURPOSE = "oidc-pushed-request-uri"
ASSERTION_PURPOSE = "oidc-client-assertion"
PUSHED_LIFETIME = timedelta(seconds=60)
"""RFC 9126 §2.2: short; a relying party redirects the browser right after pushing."""
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
_OTHER_PERSON = OAuthError("access_denied", "Another person signed in during the request.")
VERIFIER_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer the client at its redirect URI (RFC 6749 §4.1.2 / §4.1.2.1, RFC 9207)."""

    redirect_uri: str
    response_mode: str
    parameters: dict[str, str]


@dataclass(frozen=True, slots=True)
class SignIn:
    """The person must sign in (again) first; the request waits under ``pending``."""

    pending: str
    login_hint: str | None
    ui_locales: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AskConsent:
    pending: str
    client: Client
    scope: tuple[str, ...]
    ui_locales: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Confirm:
    """The person must confirm the request's transaction (RFC 9396) on
    ``/confirm/{confirmation_id}``; the request waits under ``pending``."""

    pending: str
    confirmation_id: str
    ui_locales: tuple[str, ...]


Outcome = Respond | SignIn | AskConsent | Confirm
SessionLookup = Callable[[SqlRepositories, datetime], Session | None]
"""The browser's live session, looked up in the caller's transaction at ``now``."""


_Answer = TypeVar("_Answer")


class KeysToFetch(Exception):
    """A ``jwks_uri`` client's key set must be fetched before its assertion can be
    checked (oidc/remote_jwks.py): raised inside a transaction, before it writes."""

    def __init__(self, client_id: str, uri: str, kid: str | None, *, missed: bool) -> None:
        super().__init__(client_id)
        self.client_id = client_id
        self.uri = uri
        self.kid = kid
        self.missed = missed


class Provider:
    def __init__(self, sekisho: Sekisho, database: Database) -> None:
        self.sekisho = sekisho
        self.database = database
        self.keys: Keyring = sekisho.keys
        self.issuer = sekisho.settings.public_origin
        self.private_keys = signing_keys.PrivateKeys(self.keys)
        self.refresher = refresh.Refresher(self)
        self.fetcher = MetadataFetcher(
            allow_loopback=sekisho.settings.oidc_client_fetch_allow_loopback
        )
        self.remote_keys = RemoteKeySets(self.fetcher, self.clock)

    def clock(self) -> datetime:
        return self.sekisho.clock()

    # -- keys ------------------------------------------------------------------------

    def ensure_keys(self) -> None:
        """At start: a key to sign with for every algorithm, readable under this server
        key. After a deliberate change of server key (``sekisho key adopt``) a sealed key
        cannot be opened: a new key of its algorithm signs at once, the old public key
        stays published until the tokens it signed have expired."""
        with self.database.transaction() as repos:
            store = SqlOidc(repos.connection)
            now = self.clock()
            for alg in signing_keys.ALGORITHMS:
                signing_keys.ensure_signing_key(store, self.keys, now=now, alg=alg)
                current = signing_keys.signing_key(store.signing_keys(), now, alg)
                if current is None:
                    continue
                try:
                    self.private_keys.open(current)
                except InvalidToken:
                    log.warning(
                        "signing key %s is sealed under another server key: rotating",
                        current.kid,
                    )
                    signing_keys.rotate(
                        store,
                        self.keys,
                        now=now,
                        delay=timedelta(0),
                        token_lifetime=clients.MAX_TOKEN_LIFETIME,
                        alg=alg,
                    )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        with self.database.reading() as repos:
            return signing_keys.published(SqlOidc(repos.connection).signing_keys(), self.clock())

    # -- authorization ---------------------------------------------------------------

    def authorize(
        self,
        params: Callable[[str], list[str]],
        *,
        session: SessionLookup,
        client_info: ClientInfo,
    ) -> Outcome:
        """A fresh authorization request from the client (GET /authorize). The browser's
        session is looked up inside the request's own transaction (one transaction for
        both, not two)."""
        if params("request_uri"):
            return self._authorize_pushed(params, session=session, client_info=client_info)
        refused: AuthorizationPageError | None = None
        with self.database.transaction() as repos:
            store = SqlOidc(repos.connection)
            now = self.clock()
            signed_in = session(repos, now)
            try:
                client, target = requests.trusted_target(params, store.client)
            except AuthorizationPageError as error:
                self._audit_page_refusal(
                    repos, params("client_id"), signed_in, error.reason, client_info, now
                )
                refused = error
            else:
                if client.require_par:
                    self._audit_refusal(repos, client, signed_in, "par_required", client_info, now)
                    return self._error(
                        target.redirect_uri,
                        target.response_mode,
                        target.state,
                        OAuthError(
                            "invalid_request",
                            "This client must push its authorization requests (RFC 9126).",
                        ),
                    )
                try:
                    request = requests.validate(params, client, target)
                    request = authorization_details.attach(
                        request, params, self.sekisho.completion.policy, client
                    )
                except OAuthError as error:
                    self._audit_refusal(repos, client, signed_in, error.error, client_info, now)
                    return self._error(
                        target.redirect_uri, target.response_mode, target.state, error
                    )
                return self._decide(repos, store, client, request, signed_in, client_info, now)
        raise refused

    def _authorize_pushed(
        self,
        params: Callable[[str], list[str]],
        *,
        session: SessionLookup,
        client_info: ClientInfo,
    ) -> Outcome:
        """``/authorize`` with ``client_id`` and a pushed ``request_uri`` (RFC 9126 §4):
        the request is spent by one atomic UPDATE whoever presents it, and used only
        when it was pushed by this client; its parameters are the whole request (any
        sent beside it are ignored, never merged). A refusal is a page: the only
        redirect URI we could trust is inside the request that failed."""
        client_ids = params("client_id")
        request_uris = params("request_uri")
        with self.database.transaction() as repos:
            store = SqlOidc(repos.connection)
            now = self.clock()
            signed_in = session(repos, now)
            client = store.client(client_ids[0]) if len(client_ids) == 1 else None
            reference = request_uris[0] if len(request_uris) == 1 else ""
            if client is None:
                reason = "unknown_client"
            elif not reference.startswith(REQUEST_URI_PREFIX) or len(reference) > 128:
                reason = "invalid_request_uri"
            else:
                digest = self.keys.digest(
                    PUSHED_PURPOSE, reference.removeprefix(REQUEST_URI_PREFIX)
                )
                request = store.use_pushed(digest, now=now)
                if request is not None and request.client_id == client.id:
                    return self._decide(repos, store, client, request, signed_in, client_info, now)
                reason = "invalid_request_uri"
            self._audit_page_refusal(repos, client_ids, signed_in, reason, client_info, now)
        raise AuthorizationPageError(reason)

    def push(
        self, headers: dict[str, str], form: dict[str, str], *, basic: bool, client_info: ClientInfo
    ) -> dict[str, Any]:
        """The pushed authorization request endpoint (RFC 9126 §2): the client
        authenticates as at ``/token``, the request is validated as at ``/authorize``
        and kept under a keyed hash of a random reference for :data:`PUSHED_LIFETIME`.
        Refusals are raised after the transaction commits (with their audit event)."""
        credentials = presented_credentials(headers, form, basic=basic)
        if "request_uri" in form:
            raise OAuthError("invalid_request", "A pushed request cannot hold request_uri.")
        reference = secrets.token_urlsafe(32)
        self.for_client(
            credentials,
            client_info,
            lambda repos, store, client, now: self._push(
                repos, store, client, {**form, "client_id": client.id}, reference, client_info, now
            ),
            pushed=True,
        )
        return {
            "request_uri": REQUEST_URI_PREFIX + reference,
            "expires_in": int(PUSHED_LIFETIME.total_seconds()),
        }

    def _push(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        fields: dict[str, str],
        reference: str,
        client_info: ClientInfo,
        now: datetime,
    ) -> OAuthError | None:
        def params(name: str) -> list[str]:
            return [fields[name]] if name in fields else []

        try:
            _client, target = requests.trusted_target(params, lambda _id: client)
            request = requests.validate(params, client, target)
            request = authorization_details.attach(
                request, params, self.sekisho.completion.policy, client
            )
        except AuthorizationPageError as error:
            refusal = OAuthError("invalid_request", "redirect_uri is not registered.")
            reason = error.reason
        except OAuthError as error:
            refusal, reason = error, error.error
        else:
            store.add_pushed(
                self.keys.digest(PUSHED_PURPOSE, reference),
                request,
                now=now,
                expires_at=now + PUSHED_LIFETIME,
            )
            self._audit(repos, "oidc.par.pushed", "success", client, None, client_info, now)
            return None
        self._audit(
            repos, "oidc.par.refused", "failure", client, None, client_info, now, error=reason
        )
        return refusal

    def _keys_of(self, client: Client) -> dict[str, Any] | None:
        """A ``private_key_jwt`` client's key set: inline, or as prepared from its
        ``jwks_uri`` (a failed fetch refuses with ``jwks_uri:<code>``)."""
        if client.jwks_uri is None:
            return client.jwks
        found = self.remote_keys.outcome(client.id, client.jwks_uri)
        if found is None:
            raise AssertionRefused("jwks_uri:not_fetched")
        if isinstance(found, FetchFailure):
            raise AssertionRefused(f"jwks_uri:{found.value}")
        return found

    def _verified(
        self,
        client: Client,
        assertion: str,
        audiences: tuple[str, ...],
        now: datetime,
        fetched: bool,
    ) -> client_assertion.Assertion:
        """The client's checked assertion (:func:`client_assertion.verify`). For a client
        at a ``jwks_uri``, raises :class:`KeysToFetch` instead, unless its set was just
        ``fetched`` for this request, when the kept set is stale, lacks the assertion's
        ``kid``, or, the assertion naming none, none of its keys verifies the signature
        (oidc/remote_jwks.py decides whether a refetch is due)."""
        uri = client.jwks_uri
        kid = client_assertion.key_id(assertion)
        if uri is not None and not fetched and self.remote_keys.wants(client.id, uri, kid):
            raise KeysToFetch(client.id, uri, kid, missed=False)
        try:
            return client_assertion.verify(
                assertion,
                client_id=client.id,
                jwks=self._keys_of(client),
                audiences=audiences,
                now=now,
            )
        except AssertionRefused as refused:
            missed = kid is None and refused.reason.startswith("signature:")
            if (
                uri is not None
                and missed
                and not fetched
                and self.remote_keys.wants(client.id, uri, kid, missed=True)
            ):
                raise KeysToFetch(client.id, uri, kid, missed=True) from refused
            raise

    def _audiences(self, *, pushed: bool) -> tuple[str, ...]:
        """What a client assertion's ``aud`` may say here (oidc/client_assertion.py)."""
        token_endpoint = f"{self.issuer}/token"
        if pushed:
            return (self.issuer, token_endpoint, f"{self.issuer}/par")
        return (self.issuer, token_endpoint)

    def _client_of(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        credentials: Credentials,
        audiences: tuple[str, ...],
        client_info: ClientInfo,
        now: datetime,
        fetched: bool,
    ) -> Client | OAuthError:
        """The authenticated client, or the ``invalid_client`` to answer after an audit
        event that says why. A ``private_key_jwt`` assertion's ``jti`` is spent here,
        atomically (RFC 7523 §3 item 7). The client is read here only, once per
        transaction. Raises :class:`KeysToFetch` (see :meth:`_verified`)."""
        client = store.client(credentials.client_id)
        try:
            if credentials.method != "private_key_jwt" or credentials.assertion is None:
                return authenticate(self.keys, client, credentials)
            if client is None or client.auth_method != "private_key_jwt":
                raise AssertionRefused("not_a_private_key_jwt_client")
            checked = self._verified(client, credentials.assertion, audiences, now, fetched)
            bound = f"{len(client.id)}:{client.id}:{checked.jti}"
            if not store.spend_assertion(
                self.keys.digest(ASSERTION_PURPOSE, bound),
                client_id=client.id,
                expires_at=checked.expires_at,
            ):
                raise AssertionRefused("replayed")
            return client
        except (OAuthError, AssertionRefused) as error:
            reason = error.reason if isinstance(error, AssertionRefused) else "credentials"
            repos.audit.append(
                AuditEvent(
                    event="oidc.token_endpoint_auth.refused",
                    outcome="failure",
                    at=now,
                    ip=client_info.ip,
                    user_agent=client_info.user_agent,
                    detail={
                        "client_id": credentials.client_id[:64],
                        "method": credentials.method,
                        "reason": reason,
                    },
                )
            )
            return OAuthError("invalid_client", "Client authentication failed.", status=401)

    def resume(
        self,
        pending: str | None,
        *,
        session: Session | None,
        client_info: ClientInfo,
        left_confirmation: bool = False,
    ) -> Outcome:
        """Back from Sekisho's sign-in pages with the pending request's id, or from the
        confirmation page (``left_confirmation``: its link back, followed without
        confirming, declines the transaction)."""
        with self.database.transaction() as repos:
            store = SqlOidc(repos.connection)
            now = self.clock()
            waiting = store.pending(self._digest(pending), now=now) if pending else None
            if waiting is None:
                raise AuthorizationPageError("request_expired")
            client = store.client(waiting.request.client_id)
            if client is None:
                raise AuthorizationPageError("unknown_client")
            if waiting.request.authorization_details and session is not None and pending:
                confirmation = SqlConfirmations(repos.connection).get(
                    authorization_details.confirmation_id(self.keys, pending)
                )
                if confirmation is not None:
                    return self._after_confirmation(
                        repos,
                        store,
                        client,
                        waiting.request,
                        session,
                        client_info,
                        now,
                        pending=pending,
                        confirmation=confirmation,
                        left=left_confirmation,
                    )
            return self._decide(
                repos,
                store,
                client,
                waiting.request,
                session,
                client_info,
                now,
                pending=pending,
                waiting_since=waiting.created_at,
            )

    def asks_for_passkey(self, pending: str | None) -> bool:
        """Whether the request this browser is signing in for has ``acr_values`` that no
        sign-in but a passkey meets (an email link or code only ever proves AAL1), or
        carries a transaction (RFC 9396) to confirm with a passkey: the sign-in page
        then says so and offers the passkey first. Only reads."""
        if not pending:
            return False
        with self.database.reading() as repos:
            waiting = SqlOidc(repos.connection).pending(self._digest(pending), now=self.clock())
        if waiting is None:
            return False
        if waiting.request.authorization_details:
            return True  # its confirmation needs a passkey that verifies the user anyway
        return not assurance.satisfies(assurance.ACR_AAL1, waiting.request.acr_values)

    def consent(
        self,
        pending: str | None,
        *,
        session: Session | None,
        approved: bool,
        client_info: ClientInfo,
    ) -> Outcome:
        """The consent page's answer (OIDC Core §3.1.2.4)."""
        with self.database.transaction() as repos:
            store = SqlOidc(repos.connection)
            now = self.clock()
            waiting = store.pending(self._digest(pending), now=now) if pending else None
            if waiting is None or pending is None:
                raise AuthorizationPageError("request_expired")
            request = self._tightened(repos, waiting.request, session)
            client = store.client(request.client_id)
            if client is None:
                raise AuthorizationPageError("unknown_client")
            if (
                session is None
                or self._needs_sign_in(request, session, waiting.created_at, now)
                or not assurance.satisfies(
                    assurance.acr_for(amr=session.amr, aal=session.aal), request.acr_values
                )
            ):
                return self._decide(
                    repos,
                    store,
                    client,
                    request,
                    session,
                    client_info,
                    now,
                    pending=pending,
                    waiting_since=waiting.created_at,
                )
            carries_transaction = bool(request.authorization_details)
            if not carries_transaction and not store.finish_pending(self._digest(pending), now=now):
                raise AuthorizationPageError("request_expired")
            if not approved:
                if carries_transaction:
                    store.finish_pending(self._digest(pending), now=now)
                error = OAuthError("access_denied", "The person declined.")
                self._audit_refusal(repos, client, session, error.error, client_info, now)
                return self._error(
                    request.redirect_uri, request.response_mode, request.state, error
                )
            store.remember_consent(session.user_id, client.id, frozenset(request.scope), now=now)
            self._audit(
                repos,
                "oidc.consent.granted",
                "success",
                client,
                session,
                client_info,
                now,
                scope=" ".join(request.scope),
            )
            if carries_transaction:
                return self._confirm(
                    repos, store, client, request, session, client_info, now, pending
                )
            return self._issue_code(repos, store, client, request, session, client_info, now)

    def _tightened(
        self, repos: SqlRepositories, request: AuthorizationRequest, session: Session | None
    ) -> AuthorizationRequest:
        """A request carrying a transaction, as the signed-in person's tier demands for
        its action (:func:`sekisho.oidc.authorization_details.tightened`)."""
        if session is None or not request.authorization_details:
            return request
        user = repos.users.by_id(session.user_id)
        if user is None:
            raise AuthorizationPageError("request_expired")
        tier = self.sekisho.completion.policy.tier_for(user)
        return authorization_details.tightened(request, tier)

    def _needs_sign_in(
        self,
        request: AuthorizationRequest,
        session: Session,
        waiting_since: datetime | None,
        now: datetime,
    ) -> bool:
        """``prompt=login`` and ``max_age`` need a proof newer than the request, unless
        the session's proof is recent enough (OIDC Core §3.1.2.1)."""
        fresh = waiting_since is not None and session.auth_time >= waiting_since
        if "login" in request.prompt and not fresh:
            return True
        if request.max_age is not None and not fresh:
            return now - session.auth_time > timedelta(seconds=request.max_age)
        return False

    def _decide(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        request: AuthorizationRequest,
        session: Session | None,
        client_info: ClientInfo,
        now: datetime,
        *,
        pending: str | None = None,
        waiting_since: datetime | None = None,
    ) -> Outcome:
        if not redirect_uri_matches(client, request.redirect_uri):
            # a pending or pushed request whose redirect URI was removed since: no code
            # and no error go there any more (``sekisho clients update``)
            raise AuthorizationPageError("redirect_uri_mismatch")
        request = self._tightened(repos, request, session)
        if session is None or self._needs_sign_in(request, session, waiting_since, now):
            if "none" in request.prompt:
                error = OAuthError("login_required", "The person must sign in.")
                self._audit_refusal(repos, client, session, error.error, client_info, now)
                return self._error(
                    request.redirect_uri, request.response_mode, request.state, error
                )
            pending = pending or self._wait(store, request, now)
            return SignIn(
                pending=pending, login_hint=request.login_hint, ui_locales=request.ui_locales
            )
        if not assurance.satisfies(
            assurance.acr_for(amr=session.amr, aal=session.aal), request.acr_values
        ):
            return self._step_up(
                repos, store, client, request, session, client_info, now, pending, waiting_since
            )
        consented = store.consented_scopes(session.user_id, client.id)
        asked_again = "consent" in request.prompt
        if not client.first_party and (asked_again or not set(request.scope) <= consented):
            if "none" in request.prompt:
                error = OAuthError("consent_required", "The person must consent.")
                self._audit_refusal(repos, client, session, error.error, client_info, now)
                return self._error(
                    request.redirect_uri, request.response_mode, request.state, error
                )
            pending = pending or self._wait(store, request, now)
            return AskConsent(
                pending=pending, client=client, scope=request.scope, ui_locales=request.ui_locales
            )
        if request.authorization_details:
            pending = pending or self._wait(store, request, now)
            return self._confirm(repos, store, client, request, session, client_info, now, pending)
        if pending is not None and not store.finish_pending(self._digest(pending), now=now):
            raise AuthorizationPageError("request_expired")
        return self._issue_code(repos, store, client, request, session, client_info, now)

    def _step_up(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        request: AuthorizationRequest,
        session: Session,
        client_info: ClientInfo,
        now: datetime,
        pending: str | None,
        waiting_since: datetime | None,
    ) -> Outcome:
        """The session proved less than ``acr_values`` asks (OpenID EAP ACR Values 1.0
        §3; RFC 9470): a new sign-in, as ``prompt=login``, when one of the account's
        passkeys reaches the level (``phr``: user verification; ``phrh``: AAL3, see
        :mod:`sekisho.policy.assurance`); otherwise, or when the sign-in
        made for this request still proved too little, ``unmet_authentication_requirements``
        (OIDC Core §3.1.2.6) rather than a weaker login."""
        attestation = Attestation(frozenset(self.sekisho.settings.passkey_aaguid_allowlist))
        strongest = highest_aal(repos.passkeys.for_user(session.user_id), attestation)
        reachable = assurance.satisfies(assurance.acr_of_level(strongest), request.acr_values)
        fresh = waiting_since is not None and session.auth_time >= waiting_since
        if not reachable or fresh:
            error = OAuthError(
                "unmet_authentication_requirements",
                "The account cannot prove the requested authentication context.",
            )
        elif "none" in request.prompt:
            error = OAuthError("login_required", "The person must sign in with a passkey.")
        else:
            if pending is None:
                pending = self._wait(store, request, now)
                self._audit(
                    repos,
                    "oidc.authorization.step_up",
                    "success",
                    client,
                    session,
                    client_info,
                    now,
                    acr_values=" ".join(request.acr_values),
                )
            return SignIn(
                pending=pending, login_hint=request.login_hint, ui_locales=request.ui_locales
            )
        if pending is not None:
            store.finish_pending(self._digest(pending), now=now)
        self._audit_refusal(repos, client, session, error.error, client_info, now)
        return self._error(request.redirect_uri, request.response_mode, request.state, error)

    def _wait(self, store: SqlOidc, request: AuthorizationRequest, now: datetime) -> str:
        pending = secrets.token_urlsafe(32)
        store.add_pending(
            self._digest(pending), request, now=now, expires_at=now + PENDING_LIFETIME
        )
        return pending

    def _digest(self, pending: str) -> str:
        return self.keys.digest(PENDING_PURPOSE, pending)

    def _issue_code(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        request: AuthorizationRequest,
        session: Session,
        client_info: ClientInfo,
        now: datetime,
        *,
        confirmation_id: str | None = None,
    ) -> Respond:
        grant = Grant(
            id=secrets.token_urlsafe(16),
            client_id=client.id,
            user_id=session.user_id,
            session_id=session.id,
            scope=request.scope,
            nonce=request.nonce,
            auth_time=session.auth_time,
            amr=session.amr,
            acr=assurance.acr_for(amr=session.amr, aal=session.aal),
            created_at=now,
            confirmation_id=confirmation_id,
        )
        store.add_grant(grant)
        code = secrets.token_urlsafe(32)
        store.add_code(
            self.keys.digest(CODE_PURPOSE, code),
            grant_id=grant.id,
            client_id=client.id,
            redirect_uri=request.redirect_uri,
            code_challenge=request.code_challenge,
            expires_at=now + CODE_LIFETIME,
        )
        self._audit(
            repos,
            "oidc.authorization.granted",
            "success",
            client,
            session,
            client_info,
            now,
            grant=grant.id,
            acr=grant.acr,
            scope=" ".join(grant.scope),
            **({"confirmation": confirmation_id} if confirmation_id else {}),
        )
        parameters = {"code": code, "iss": self.issuer}
        if request.state is not None:
            parameters["state"] = request.state
        return Respond(request.redirect_uri, request.response_mode, parameters)

    def _confirm(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        request: AuthorizationRequest,
        session: Session,
        client_info: ClientInfo,
        now: datetime,
        pending: str,
    ) -> Outcome:
        """Everything else allows a code: the person now confirms the transaction on
        Sekisho's confirmation page (:mod:`sekisho.oidc.authorization_details`), unless
        the client asked for no interaction (OIDC Core §3.1.2.6 ``interaction_required``)
        or sensitive actions are on hold after a recovery (docs/flows/recovery.md)."""
        if "none" in request.prompt:
            return self._decline(
                repos,
                store,
                client,
                request,
                session,
                client_info,
                now,
                pending,
                OAuthError("interaction_required", "The transaction must be confirmed."),
            )
        if repos.recoveries.hold_until(session.user_id, now=now) is not None:
            return self._decline(
                repos,
                store,
                client,
                request,
                session,
                client_info,
                now,
                pending,
                OAuthError("access_denied", "Sensitive actions are on hold after a recovery."),
                reason="recovery_hold",
            )
        confirmations = SqlConfirmations(repos.connection)
        wanted = authorization_details.confirmation_id(self.keys, pending)
        known = confirmations.get(wanted)
        confirmation = authorization_details.open_confirmation(
            confirmations,
            confirmation_id=wanted,
            request=request,
            user_id=session.user_id,
            session_id=session.id,
            now=now,
            lifetime=self.sekisho.settings.confirmation_request_lifetime,
        )
        if confirmation.user_id != session.user_id:
            return self._decline(
                repos, store, client, request, session, client_info, now, pending, _OTHER_PERSON
            )
        if known is None:
            self._audit(
                repos,
                "confirmation.requested",
                "success",
                client,
                session,
                client_info,
                now,
                confirmation=confirmation.id,
                action=confirmation.action,
                details_hash=confirmation.details_hash,
                via=authorization_details.PARAMETER,
            )
        return Confirm(
            pending=pending, confirmation_id=confirmation.id, ui_locales=request.ui_locales
        )

    def _after_confirmation(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        request: AuthorizationRequest,
        session: Session,
        client_info: ClientInfo,
        now: datetime,
        *,
        pending: str,
        confirmation: Confirmation,
        left: bool,
    ) -> Outcome:
        """Back from the confirmation page: a code only for a confirmed, unspent
        transaction of this person; back to the page while it waits; declined when the
        person left it unconfirmed, or it expired."""
        if confirmation.user_id != session.user_id:
            return self._decline(
                repos, store, client, request, session, client_info, now, pending, _OTHER_PERSON
            )
        status = confirmation.status(now)
        if status == "pending" and not left:
            return Confirm(
                pending=pending, confirmation_id=confirmation.id, ui_locales=request.ui_locales
            )
        if not store.finish_pending(self._digest(pending), now=now):
            raise AuthorizationPageError("request_expired")
        if status != "confirmed":
            error = OAuthError("access_denied", "The transaction was not confirmed.")
            self._audit_refusal(repos, client, session, error.error, client_info, now)
            return self._error(request.redirect_uri, request.response_mode, request.state, error)
        return self._issue_code(
            repos,
            store,
            client,
            request,
            session,
            client_info,
            now,
            confirmation_id=confirmation.id,
        )

    def _decline(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        request: AuthorizationRequest,
        session: Session,
        client_info: ClientInfo,
        now: datetime,
        pending: str,
        error: OAuthError,
        *,
        reason: str | None = None,
    ) -> Respond:
        """End a request carrying a transaction with ``error`` to the client (audited)."""
        store.finish_pending(self._digest(pending), now=now)
        self._audit_refusal(repos, client, session, reason or error.error, client_info, now)
        return self._error(request.redirect_uri, request.response_mode, request.state, error)

    def _error(
        self, redirect_uri: str, response_mode: str, state: str | None, error: OAuthError
    ) -> Respond:
        parameters = {**error.body(), "iss": self.issuer}
        if state is not None:
            parameters["state"] = state
        return Respond(redirect_uri, response_mode, parameters)

    # -- token endpoint --------------------------------------------------------------

    def token(
        self, headers: dict[str, str], form: dict[str, str], *, basic: bool, client_info: ClientInfo
    ) -> dict[str, Any]:
        """RFC 6749 §4.1.3 with RFC 7636 §4.6 and OIDC Core §3.1.3; ``refresh_token``
        (RFC 6749 §6) is :mod:`sekisho.oidc.refresh`'s. Refusals are raised after the
        transaction commits, so a burned code and a revoked grant stay so."""
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            return self.refresher.refresh(headers, form, basic=basic, client_info=client_info)
        if grant_type != "authorization_code":
            raise OAuthError(
                "unsupported_grant_type", "Only authorization_code and refresh_token are supported."
            )
        credentials = presented_credentials(headers, form, basic=basic)
        code = form.get("code")
        redirect_uri = form.get("redirect_uri")
        verifier = form.get("code_verifier")
        if not code or not redirect_uri or verifier is None:
            raise OAuthError(
                "invalid_request", "code, redirect_uri and code_verifier are required."
            )
        if not (43 <= len(verifier) <= 128 and set(verifier) <= VERIFIER_ALPHABET):
            raise OAuthError("invalid_grant", "The code_verifier is malformed.")
        return self.for_client(
            credentials,
            client_info,
            lambda repos, store, client, now: self._redeem(
                repos, store, client, code, redirect_uri, verifier, client_info, now
            ),
        )

    def for_client(
        self,
        credentials: Credentials,
        client_info: ClientInfo,
        handle: Callable[[SqlRepositories, SqlOidc, Client, datetime], _Answer | OAuthError],
        *,
        pushed: bool = False,
    ) -> _Answer:
        """What ``handle`` answers the client ``credentials`` authenticate (see
        :meth:`authenticated`), in one transaction. A refusal, the client's own or
        ``handle``'s, is raised only after the commit, so what was written on the way
        stays: a spent code or assertion, a revoked token family, the audit events.

        A client whose key set must first be fetched from its ``jwks_uri`` leaves the
        transaction before anything is written (:class:`KeysToFetch` rolls it back), so
        that no fetch holds the SQLite writer lock or a PostgreSQL connection; the set is
        fetched and the transaction runs once more, with what was fetched."""
        try:
            return self._for_client(credentials, client_info, handle, pushed, fetched=False)
        except KeysToFetch as wanted:
            self.remote_keys.prepare(wanted.client_id, wanted.uri, wanted.kid, missed=wanted.missed)
        return self._for_client(credentials, client_info, handle, pushed, fetched=True)

    def _for_client(
        self,
        credentials: Credentials,
        client_info: ClientInfo,
        handle: Callable[[SqlRepositories, SqlOidc, Client, datetime], _Answer | OAuthError],
        pushed: bool,
        *,
        fetched: bool,
    ) -> _Answer:
        with self.database.transaction() as repos:
            store = SqlOidc(repos.connection)
            now = self.clock()
            found = self.authenticated(
                repos, store, credentials, client_info, now, pushed=pushed, fetched=fetched
            )
            answer = found if isinstance(found, OAuthError) else handle(repos, store, found, now)
        if isinstance(answer, OAuthError):
            raise answer
        return answer

    def authenticated(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        credentials: Credentials,
        client_info: ClientInfo,
        now: datetime,
        *,
        pushed: bool = False,
        fetched: bool = False,
    ) -> Client | OAuthError:
        """The client that presented ``credentials`` by any of its methods (see
        :meth:`_client_of`), or the ``invalid_client`` to raise once the transaction
        has committed its audit event. Counted against ``limit_token_per_client`` only
        once it has proven who it is, so a stranger naming a client cannot spend its
        allowance."""
        found = self._client_of(
            repos, store, credentials, self._audiences(pushed=pushed), client_info, now, fetched
        )
        if not isinstance(found, OAuthError):
            self.sekisho.limits.hit(self.sekisho.limits.token_per_client, found.id)
        return found

    def _redeem(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        code: str,
        redirect_uri: str,
        verifier: str,
        client_info: ClientInfo,
        now: datetime,
    ) -> dict[str, Any] | OAuthError:
        digest = self.keys.digest(CODE_PURPOSE, code[:256])
        redeemed = store.redeem_code(digest, now=now)
        if redeemed is None:
            replayed = store.redeemed_code_grant(digest)
            refusal = "unknown_or_expired"
            if replayed is not None:
                refusal = "replayed"
                store.revoke_grant(replayed, reason="code_replayed", now=now)
            self._audit_token_refusal(repos, client, replayed, refusal, client_info, now)
            return OAuthError("invalid_grant", "The code is invalid or expired.")
        reason: str | None = None
        if redeemed.client_id != client.id:
            reason = "other_client"
        elif redeemed.redirect_uri != redirect_uri:
            reason = "redirect_uri_mismatch"
        elif not redirect_uri_matches(client, redirect_uri):
            reason = "redirect_uri_unregistered"  # removed since (``sekisho clients update``)
        elif not secrets.compare_digest(
            create_s256_code_challenge(verifier), redeemed.code_challenge
        ):
            reason = "pkce_mismatch"
        grant, seen = store.grant_and_session(redeemed.grant_id, now=now) or (None, None)
        if reason is None and (grant is None or grant.revoked_at is not None):
            reason = "grant_revoked"
        session_end = None
        if reason is None and grant is not None:
            session_end = self.session_end(seen, now)
            reason = "session_ended" if session_end is None else None
        if reason is not None or grant is None or session_end is None:
            store.revoke_grant(redeemed.grant_id, reason=reason or "invalid", now=now)
            self._audit_token_refusal(
                repos, client, redeemed.grant_id, reason or "invalid", client_info, now
            )
            return OAuthError("invalid_grant", "The code is invalid or expired.")
        user = repos.users.by_id(grant.user_id)
        if user is None or user.status != "active":
            store.revoke_grant(grant.id, reason="account_inactive", now=now)
            self._audit_token_refusal(repos, client, grant.id, "account_inactive", client_info, now)
            return OAuthError("invalid_grant", "The code is invalid or expired.")
        transaction: dict[str, Any] = {}
        if grant.confirmation_id is not None:
            confirmation = SqlConfirmations(repos.connection).get(grant.confirmation_id)
            if confirmation is None or confirmation.status(now) != "confirmed":
                store.revoke_grant(grant.id, reason="transaction_unusable", now=now)
                self._audit_token_refusal(
                    repos, client, grant.id, "transaction_unusable", client_info, now
                )
                return OAuthError("invalid_grant", "The code is invalid or expired.")
            transaction = authorization_details.token_claims(confirmation)
        body = self.issue_tokens(
            repos, store, client, grant, user, client_info=client_info, now=now, claims=transaction
        )
        if transaction:
            body[authorization_details.PARAMETER] = transaction[authorization_details.PARAMETER]
        if refresh.OFFLINE_ACCESS in grant.scope:
            body["refresh_token"] = self.refresher.issue(
                SqlOidcTokens(repos.connection), grant, now=now, ends=session_end
            )
        return body

    def issue_tokens(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        grant: Grant,
        user: User,
        *,
        client_info: ClientInfo,
        now: datetime,
        event: str = "oidc.token.issued",
        claims: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A signed access token (recorded by ``jti``) and ID token for a live grant, and
        the audit event ``event``: the token response of RFC 6749 §5.1 without a refresh
        token. The grant's frozen facts (``auth_time``, ``amr``, ``acr``, ``sid``) go
        into both tokens; its ``scope`` and ``nonce`` as the caller passes them; the
        access token also carries ``claims`` (a code's confirmed transaction, RFC 9396
        §9.1: never a refresh's)."""
        all_keys = store.signing_keys()
        key = signing_keys.signing_key(all_keys, now)
        id_key = signing_keys.signing_key(all_keys, now, client.id_token_alg)
        if key is None or id_key is None:
            raise RuntimeError("no signing key: the provider was not started")
        subject = subjects.subject(self.keys, client, grant.user_id)
        access = tokens.access_token(
            issuer=self.issuer,
            client=client,
            grant=grant,
            subject=subject,
            key=key,
            private=self.private_keys.open(key),
            now=now,
            claims=claims,
        )
        store.add_access_token(access.jti, grant_id=grant.id, expires_at=access.expires_at)
        facts = tokens.UserFacts(
            email=user.email,
            email_verified=user.email_verified_at is not None,
            name=user.display_name,
        )
        id_token = tokens.id_token(
            issuer=self.issuer,
            client=client,
            grant=grant,
            subject=subject,
            sid=subjects.session_id(self.keys, client, grant.session_id),
            user=facts,
            access_token=access.value,
            key=id_key,
            private=self.private_keys.open(id_key),
            now=now,
        )
        repos.audit.append(
            grant_event(
                event,
                grant,
                client_info,
                now,
                detail={
                    "client_id": client.id,
                    "grant": grant.id,
                    "acr": grant.acr,
                    "kid": id_key.kid,
                },
            )
        )
        return {
            "access_token": access.value,
            "token_type": "Bearer",
            "expires_in": int(client.access_token_lifetime.total_seconds()),
            "id_token": id_token,
            "scope": " ".join(grant.scope),
        }

    def session_live(self, store: SqlOidc, grant: Grant, now: datetime) -> bool:
        """The grant's Sekisho session stands (see :meth:`live_session_end`)."""
        return self.live_session_end(store, grant, now) is not None

    def live_session_end(self, store: SqlOidc, grant: Grant, now: datetime) -> datetime | None:
        """The absolute end of the grant's Sekisho session if it stands: not revoked,
        not past that end, and not idle past its limit: its level's, or the tighter one
        its tier issued it with (the same rule as ``SessionTimeouts.idle_of`` on the
        pages); None otherwise."""
        return self.session_end(store.session_activity(grant.session_id, now=now), now)

    def session_end(self, seen: SessionActivity | None, now: datetime) -> datetime | None:
        """:meth:`live_session_end` of a session's activity already read (by
        ``SqlOidc.session_activity`` or with its grant)."""
        if seen is None:
            return None
        limit = self.sekisho.sessions.timeouts.idle(seen.aal)
        if seen.idle_limit is not None:
            limit = min(limit, seen.idle_limit)
        return seen.expires_at if now - seen.last_seen_at < limit else None

    @staticmethod
    def published_keys(store: SqlOidc, now: datetime) -> list[SigningKey]:
        """The keys in the JWKS now: the only ones a token of ours may be signed with."""
        return [
            key
            for key in store.signing_keys()
            if key.published_until is None or key.published_until > now
        ]

    def bearer_grant(
        self, store: SqlOidc, bearer: str, now: datetime
    ) -> tuple[Grant, dict[str, Any]] | None:
        """The live grant behind an access token this provider signed, unexpired and
        unrevoked (RFC 9068 §4), whose Sekisho session still stands, with the token's
        claims; None for anything else."""
        claims = tokens.access_token_claims(
            bearer, issuer=self.issuer, published=self.published_keys(store, now), now=now
        )
        found = store.grant_and_session_of_access_token(claims["jti"], now=now) if claims else None
        if claims is None or found is None or self.session_end(found[1], now) is None:
            return None
        return found[0], claims

    # -- UserInfo --------------------------------------------------------------------

    def userinfo(self, bearer: str) -> dict[str, Any]:
        """OIDC Core §5.3 for a live access token (RFC 6750 §3.1 errors otherwise)."""
        invalid = OAuthError("invalid_token", "The access token is invalid or expired.", status=401)
        with self.database.reading() as repos:
            store = SqlOidc(repos.connection)
            now = self.clock()
            bearing = self.bearer_grant(store, bearer, now)
            if bearing is None:
                raise invalid
            grant, claims = bearing
            user = repos.users.by_id(grant.user_id)
            client = store.client(grant.client_id)
            if user is None or user.status != "active" or client is None:
                raise invalid
            facts = tokens.UserFacts(
                email=user.email,
                email_verified=user.email_verified_at is not None,
                name=user.display_name,
            )
            # A refreshed token may carry less than the grant (RFC 6749 §6 ``scope``).
            scope = tuple(name for name in claims.get("scope", "").split() if name in grant.scope)
            subject = subjects.subject(self.keys, client, user.id)
            return {"sub": subject, **tokens.scoped_claims(scope, facts)}

    # -- audit -----------------------------------------------------------------------

    @staticmethod
    def _audit(
        repos: SqlRepositories,
        event: str,
        outcome: str,
        client: Client,
        session: Session | None,
        client_info: ClientInfo,
        now: datetime,
        **detail: str,
    ) -> None:
        repos.audit.append(
            session_event(
                event,
                session,
                client_info,
                now,
                outcome=outcome,
                detail={"client_id": client.id, **detail},
            )
        )

    @staticmethod
    def _audit_page_refusal(
        repos: SqlRepositories,
        client_ids: list[str],
        session: Session | None,
        reason: str,
        client_info: ClientInfo,
        now: datetime,
    ) -> None:
        """A refusal answered with a page, before any client could be trusted with a
        redirect (the client named, if any, is recorded as sent, cut to 64 characters)."""
        repos.audit.append(
            AuditEvent(
                event="oidc.authorization.refused",
                outcome="failure",
                at=now,
                ip=client_info.ip,
                user_agent=client_info.user_agent,
                user_id=session.user_id if session else None,
                session_id=session.id if session else None,
                detail={"error": reason, "client_id": client_ids[0][:64] if client_ids else ""},
            )
        )

    def _audit_refusal(
        self,
        repos: SqlRepositories,
        client: Client,
        session: Session | None,
        error: str,
        client_info: ClientInfo,
        now: datetime,
    ) -> None:
        self._audit(
            repos,
            "oidc.authorization.refused",
            "failure",
            client,
            session,
            client_info,
            now,
            error=error,
        )

    @staticmethod
    def _audit_token_refusal(
        repos: SqlRepositories,
        client: Client,
        grant_id: str | None,
        reason: str,
        client_info: ClientInfo,
        now: datetime,
    ) -> None:
        detail = {"client_id": client.id, "reason": reason}
        if grant_id is not None:
            detail["grant"] = grant_id
        repos.audit.append(
            AuditEvent(
                event="oidc.code.replayed" if reason == "replayed" else "oidc.token.refused",
                outcome="failure",
                at=now,
                ip=client_info.ip,
                user_agent=client_info.user_agent,
                detail=detail,
            )
        )
