"""Token introspection (RFC 7662): ``POST /introspect`` for resource servers.

Who may ask: a confidential client, authenticated as at the token endpoint (its
registered method and secret). A resource server is registered as such a client. Public
clients are refused (401 ``invalid_client``): anyone can present their id, and §4 asks
that the endpoint not become a token-scanning oracle.

What it answers:

- An access token (RFC 9068 JWT) of any client: a resource server receives other
  clients' access tokens, and every claim in the answer is already in the signed token
  the caller holds. Active when the signature, issuer, audience and expiry hold, its
  ``jti`` is not on the revocation deny-list, its grant stands, its Sekisho session
  stands (not signed out, revoked, expired or idle past its limit) and the account is
  active. The answer is the token's claims with ``active`` and ``token_type``. A token
  carrying a confirmed transaction (RFC 9396 ``authorization_details``, ``txn``) is
  active only while that confirmation is confirmed and unredeemed: once its client
  redeems it (``POST /api/v1/confirmations/{txn}/redeem``), or it expires, the
  token's details are spent and the answer is ``{"active": false}``.
- A refresh token: only the client it was issued to learns more than
  ``{"active": false}`` (only that client ever holds it). Active when unspent,
  unexpired, and its grant, session and account stand as above.
- Anything else, and every inactive token: ``{"active": false}`` and nothing more (§2.2).

Read-only (one reading transaction): introspection changes nothing and is not audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sekisho.core.clients import ClientInfo
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


class Introspection:
    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    def introspect(
        self, headers: dict[str, str], form: dict[str, str], *, basic: bool, client_info: ClientInfo
    ) -> dict[str, Any]:
        """RFC 7662 §2. A transaction, though nothing about the token changes: a client
        assertion's ``jti`` is spent, and a refused authentication audited."""
        credentials = presented_credentials(headers, form, basic=basic)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required.")
        refresh_first = form.get("token_type_hint") == "refresh_token"
        return self._provider.for_client(
            credentials,
            client_info,
            lambda repos, store, client, now: self._answer(
                repos, store, client, token, refresh_first, now
            ),
        )

    def _answer(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        token: str,
        refresh_first: bool,
        now: datetime,
    ) -> dict[str, Any] | OAuthError:
        if client.public:
            return OAuthError(
                "invalid_client", "Introspection needs a confidential client.", status=401
            )
        finders = (self._access_token, self._refresh_token)
        for find in finders[::-1] if refresh_first else finders:
            claims = find(repos, store, client, token, now)
            if claims is not None:
                return claims
        return dict(INACTIVE)

    def _stands(self, repos: SqlRepositories, store: SqlOidc, grant: Grant, now: datetime) -> bool:
        if grant.revoked_at is not None or not self._provider.session_live(store, grant, now):
            return False
        user = repos.users.by_id(grant.user_id)
        return user is not None and user.status == "active"

    def _access_token(
        self, repos: SqlRepositories, store: SqlOidc, client: Client, token: str, now: datetime
    ) -> dict[str, Any] | None:
        """The answer for an access token; None when ``token`` is not one of ours."""
        claims = tokens.access_token_claims(
            token,
            issuer=self._provider.issuer,
            published=self._provider.published_keys(store, now),
            now=now,
        )
        if claims is None:
            return None
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
    ) -> dict[str, Any] | None:
        """The answer for a refresh token; None when ``token`` is not one of ours."""
        record = SqlOidcTokens(repos.connection).refresh_token(
            self._provider.refresher.digest(token)
        )
        if record is None:
            return None
        grant = store.grant(record.grant_id)
        if (
            record.client_id != client.id
            or not record.usable(now)
            or grant is None
            or not self._stands(repos, store, grant, now)
        ):
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
