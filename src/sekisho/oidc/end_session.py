"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): checking a logout
request and ending the Sekisho session it names.

Invariants:
- ``id_token_hint`` must be an ID token this provider signed (a key it publishes, its
  issuer, ``typ`` JWT); an expired one is accepted (§2: it identifies, it does not
  authenticate), but its ``sub`` must be the signed-in person's as that client knows
  them, else nothing ends;
- ``post_logout_redirect_uri`` is used only when it equals, character for character,
  one the identified client registered (§3.1); otherwise an error page, never a
  redirect;
- the session ends at once only when the hint names it (its ``sid``): the request then
  provably comes from a client the person signed in to in this very session; any other
  request asks the person first (§2, a confirmation page with a CSRF-checked form), so
  another site cannot sign them out;
- ending goes through the same session code as Sekisho's own sign-out (its
  ``session.signed_out`` event, its back-channel logouts), with an ``oidc.logout``
  event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from sekisho.core.clients import ClientInfo
from sekisho.core.records import Session
from sekisho.core.sessions import session_event
from sekisho.i18n import LOCALES
from sekisho.oidc import signing_keys, subjects
from sekisho.oidc.provider import Provider
from sekisho.oidc.records import Client
from sekisho.store.oidc import SqlOidc
from sekisho.store.repositories import SqlRepositories

PARAMETERS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")
MAX_PARAMETER = 8192


class LogoutPageError(Exception):
    """A logout request that cannot be honoured as asked: shown as a page (never a
    redirect), with ``reason`` as its stable error code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Hint:
    """What a verified ``id_token_hint`` says."""

    client_id: str
    subject: str
    session_id: str | None


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    client: Client | None
    post_logout_redirect_uri: str | None
    state: str | None
    ui_locales: tuple[str, ...]
    hint: Hint | None


@dataclass(frozen=True, slots=True)
class Ended:
    """The request is settled: go to ``redirect`` (None: Sekisho's own page)."""

    redirect: str | None
    state: str | None
    ended: bool


@dataclass(frozen=True, slots=True)
class Confirm:
    """The person must confirm; the form carries the checked request back."""

    request: LogoutRequest


def _one(params: Callable[[str], list[str]], name: str) -> str | None:
    values = params(name)
    if len(values) > 1:
        raise LogoutPageError("repeated_parameter")
    if not values or values[0] == "":
        return None
    if len(values[0]) > MAX_PARAMETER or "\x00" in values[0]:
        raise LogoutPageError("invalid_request")
    return values[0]


def read_hint(value: str, *, issuer: str, published: KeySet) -> Hint:
    """An ID token this provider signed, expired or not (RP-Initiated Logout §2)."""
    try:
        token = jwt.decode(value, published, algorithms=list(signing_keys.ALGORITHMS))
    except (JoseError, ValueError) as error:
        raise LogoutPageError("invalid_id_token_hint") from error
    claims = token.claims
    if token.header.get("typ") != "JWT" or claims.get("iss") != issuer:
        raise LogoutPageError("invalid_id_token_hint")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    client_id = claims.get("azp") or (audiences[0] if isinstance(audiences, list) else None)
    subject = claims.get("sub")
    session_id = claims.get("sid")
    if (
        not isinstance(client_id, str)
        or not isinstance(audiences, list)
        or client_id not in audiences
        or not isinstance(subject, str)
    ):
        raise LogoutPageError("invalid_id_token_hint")
    return Hint(
        client_id=client_id,
        subject=subject,
        session_id=session_id if isinstance(session_id, str) else None,
    )


class EndSession:
    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    def check(self, params: Callable[[str], list[str]]) -> LogoutRequest:
        """A logout request with every parameter checked (§2, §3)."""
        values = {name: _one(params, name) for name in PARAMETERS}
        provider = self._provider
        with provider.database.reading() as repos:
            store = SqlOidc(repos.connection)
            now = provider.clock()
            hint = None
            if values["id_token_hint"] is not None:
                published = signing_keys.public_key_set(provider.published_keys(store, now))
                hint = read_hint(
                    values["id_token_hint"], issuer=provider.issuer, published=published
                )
            client_id = values["client_id"]
            if hint is not None and client_id is not None and client_id != hint.client_id:
                raise LogoutPageError("client_mismatch")
            client_id = client_id or (hint.client_id if hint else None)
            client = store.client(client_id) if client_id else None
        if client_id is not None and client is None:
            raise LogoutPageError("unknown_client")
        uri = values["post_logout_redirect_uri"]
        if uri is not None and (client is None or uri not in client.post_logout_redirect_uris):
            raise LogoutPageError("post_logout_redirect_uri_mismatch")
        locales = tuple(tag for tag in (values["ui_locales"] or "").split() if tag in LOCALES)
        return LogoutRequest(
            client=client,
            post_logout_redirect_uri=uri,
            state=values["state"],
            ui_locales=locales,
            hint=hint,
        )

    def decide(
        self,
        request: LogoutRequest,
        *,
        session: Session | None,
        client_info: ClientInfo,
        confirmed: bool = False,
    ) -> Ended | Confirm:
        """End the session now, ask first, or refuse (a hint for another person)."""
        provider = self._provider
        if session is None:
            return Ended(request.post_logout_redirect_uri, request.state, ended=False)
        hint = request.hint
        if hint is not None and request.client is not None:
            expected = subjects.subject(provider.keys, request.client, session.user_id)
            if hint.subject != expected:
                with provider.database.transaction() as repos:
                    self._audit(
                        repos,
                        "failure",
                        request,
                        session,
                        client_info,
                        provider.clock(),
                        error="id_token_hint_mismatch",
                    )
                raise LogoutPageError("id_token_hint_mismatch")
        proven = (
            hint is not None
            and request.client is not None
            and hint.session_id == subjects.session_id(provider.keys, request.client, session.id)
        )
        if not proven and not confirmed:
            return Confirm(request)
        with provider.database.transaction() as repos:
            now = provider.clock()
            provider.sekisho.sessions.sign_out(repos, session, client=client_info, now=now)
            self._audit(
                repos,
                "success",
                request,
                session,
                client_info,
                now,
                confirmed="yes" if confirmed else "no",
            )
        return Ended(request.post_logout_redirect_uri, request.state, ended=True)

    @staticmethod
    def _audit(
        repos: SqlRepositories,
        outcome: str,
        request: LogoutRequest,
        session: Session,
        client_info: ClientInfo,
        now: datetime,
        **detail: str,
    ) -> None:
        repos.audit.append(
            session_event(
                "oidc.logout",
                session,
                client_info,
                now,
                outcome=outcome,
                detail={
                    "client_id": request.client.id if request.client else "",
                    "hint": "yes" if request.hint else "no",
                    **detail,
                },
            )
        )
