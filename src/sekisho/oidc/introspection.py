"""Token introspection (RFC 7662): ``POST /introspect`` for resource servers.

Who may ask: a confidential client, authenticated as at the token endpoint (its
registered method and secret). A resource server is registered as such a client. Public
clients are refused (401 ``invalid_client``): anyone can present their id, and §4 asks
that the endpoint not become a token-scanning oracle.

Who learns about which token (§2.2 and §4 leave it to the server; Sekisho is strict):

- A client learns about the tokens issued to itself.
- A resource server also learns about the access tokens of the clients it is registered
  to serve: its ``introspects`` setting (``sekisho clients add|update --introspects
  CLIENT_ID``, the admin API's ``introspects``). Sekisho's access tokens name the
  issuer as audience (RFC 9068, for UserInfo), not a resource server, so this setting is
  the resource server notion: an operator says that the brokerage API serves the
  brokerage app's tokens, and no other client's.
- Everything else, however valid the token, is answered exactly as an unknown token,
  ``{"active": false}`` (no oracle), and audited as ``oidc.introspection.refused``
  (reason ``not_entitled``, the caller and the token's client): a client asking about
  tokens it was not given is probing.

What it answers to a caller entitled to the token:

- An access token (RFC 9068 JWT): active when the signature, issuer, audience and
  expiry hold, its ``jti`` is not on the revocation deny-list, its grant stands, its
  Sekisho session stands (not signed out, revoked, expired or idle past its limit) and
  the account is active. The answer is the token's claims with ``active`` and
  ``token_type``. A token carrying a confirmed transaction (RFC 9396
  ``authorization_details``, ``txn``) is active only while that confirmation is
  confirmed and unredeemed: once its client redeems it (``POST
  /api/v1/confirmations/{txn}/redeem``), or it expires, the token's details are spent and
  the answer is ``{"active": false}``.
- A refresh token: only the client it was issued to (only that client ever holds it).
  Active when unspent, unexpired, and its grant, session and account stand as above.
- Anything else, and every inactive token: ``{"active": false}`` and nothing more (§2.2).

One transaction, which changes nothing about the token: a client assertion's ``jti`` is
spent, and a refused authentication or a refused caller is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sekisho.core.clients import ClientInfo
from sekisho.core.records import AuditEvent
from sekisho.oidc import subjects, tokens
from sekisho.oidc.clients import presented_credentials
from sekisho.oidc.discovery import provider
from sekisho.oidc.errors import OAuthError
from sekisho.oidc.records import Client, Grant
from sekisho.oidc.token import client_endpoint
from sekisho.store.confirmations import SqlConfirmations
from sekisho.store.oidc import SqlOidc
from sekisho.store.oidc_tokens import SqlOidcTokens
from sekisho.store.repositories import SqlRepositories

if TYPE_CHECKING:
    from sekisho.oidc.provider import Provider

router = APIRouter(include_in_schema=False)
INACTIVE: dict[str, Any] = {"active": False}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass(frozen=True, slots=True)
class Foreign:
    """A token of ours the caller may not learn about: answered as unknown, audited."""

    token_type: str
    issued_to: str


def _audit_refusal(
    repos: SqlRepositories, caller: Client, foreign: Foreign, client_info: ClientInfo, now: datetime
) -> None:
    repos.audit.append(
        AuditEvent(
            event="oidc.introspection.refused",
            outcome="failure",
            at=now,
            ip=client_info.ip,
            user_agent=client_info.user_agent,
            detail={
                "client_id": caller.id,
                "reason": "not_entitled",
                "token_type": foreign.token_type,
                "token_client_id": foreign.issued_to[:64],
            },
        )
    )


class Introspection:
    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    def introspect(
        self, headers: dict[str, str], form: dict[str, str], *, basic: bool, client_info: ClientInfo
    ) -> dict[str, Any]:
        """RFC 7662 §2 (see the module's docstring for who learns what)."""
        credentials = presented_credentials(headers, form, basic=basic)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required.")
        refresh_first = form.get("token_type_hint") == "refresh_token"
        return self._provider.for_client(
            credentials,
            client_info,
            lambda repos, store, client, now: self._answer(
                repos, store, client, token, refresh_first, client_info, now
            ),
        )

    def _answer(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        token: str,
        refresh_first: bool,
        client_info: ClientInfo,
        now: datetime,
    ) -> dict[str, Any] | OAuthError:
        if client.public:
            return OAuthError(
                "invalid_client", "Introspection needs a confidential client.", status=401
            )
        finders = (self._access_token, self._refresh_token)
        for find in finders[::-1] if refresh_first else finders:
            found = find(repos, store, client, token, now)
            if isinstance(found, Foreign):
                _audit_refusal(repos, client, found, client_info, now)
                return dict(INACTIVE)
            if found is not None:
                return found
        return dict(INACTIVE)

    def _stands(self, repos: SqlRepositories, store: SqlOidc, grant: Grant, now: datetime) -> bool:
        if grant.revoked_at is not None or not self._provider.session_live(store, grant, now):
            return False
        user = repos.users.by_id(grant.user_id)
        return user is not None and user.status == "active"

    def _access_token(
        self, repos: SqlRepositories, store: SqlOidc, client: Client, token: str, now: datetime
    ) -> dict[str, Any] | Foreign | None:
        """The answer for an access token; None when ``token`` is not one of ours,
        :class:`Foreign` when the caller may not learn about it."""
        claims = tokens.access_token_claims(
            token,
            issuer=self._provider.issuer,
            published=self._provider.published_keys(store, now),
            now=now,
        )
        if claims is None:
            return None
        issued_to = claims.get("client_id")
        if issued_to != client.id and issued_to not in client.introspects:
            return Foreign("access_token", str(issued_to))
        grant = store.grant_of_access_token(claims["jti"], now=now)
        if grant is None or not self._stands(repos, store, grant, now):
            return dict(INACTIVE)
        if grant.confirmation_id is not None and claims.get("txn") == grant.confirmation_id:
            confirmation = SqlConfirmations(repos.connection).get(grant.confirmation_id)
            if confirmation is None or confirmation.status(now) != "confirmed":
                return dict(INACTIVE)
        return {**claims, "active": True, "token_type": "Bearer"}

    def _refresh_token(
        self, repos: SqlRepositories, store: SqlOidc, client: Client, token: str, now: datetime
    ) -> dict[str, Any] | Foreign | None:
        """The answer for a refresh token; None when ``token`` is not one of ours,
        :class:`Foreign` when it is another client's."""
        record = SqlOidcTokens(repos.connection).refresh_token(
            self._provider.refresher.digest(token)
        )
        if record is None:
            return None
        if record.client_id != client.id:
            return Foreign("refresh_token", record.client_id)
        grant = store.grant(record.grant_id)
        if not record.usable(now) or grant is None or not self._stands(repos, store, grant, now):
            return dict(INACTIVE)
        return {
            "active": True,
            "iss": self._provider.issuer,
            "sub": subjects.subject(self._provider.keys, client, grant.user_id),
            "client_id": grant.client_id,
            "scope": " ".join(grant.scope),
            "iat": _epoch(record.created_at),
            "exp": _epoch(record.expires_at),
            "auth_time": _epoch(grant.auth_time),
            "acr": grant.acr,
            "amr": list(grant.amr),
            "sid": subjects.session_id(self._provider.keys, client, grant.session_id),
        }


@router.post("/introspect")
async def introspect(request: Request) -> Response:
    return await client_endpoint(request, Introspection(provider(request)).introspect)
