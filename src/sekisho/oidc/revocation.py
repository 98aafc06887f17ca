"""Token revocation (RFC 7009): ``POST /revoke`` with the client's own authentication,
as at the token endpoint.

Invariants:

- A client revokes only tokens issued to it. Another client's token is refused
  (§2.1: "verifies whether the token was issued to the client making the revocation
  request. If this validation fails, the request is refused") and stays valid.
- A refresh token's revocation revokes its grant: the whole family and every access
  token it issued (§2.1: "SHOULD also invalidate all access tokens based on the same
  authorization grant").
- An access token (a JWT, RFC 9068) is put on the deny-list by its ``jti``; UserInfo and
  introspection refuse it from then on. Its grant and refresh token stand.
- An unknown, malformed or expired token answers 200 like a revoked one (§2.2: the
  client cannot act on the difference). ``token_type_hint`` only orders the search.
- Every revocation and every refusal is audited with the client, user, ``amr`` and ``acr``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sekisho.core.clients import ClientInfo
from sekisho.oidc import tokens
from sekisho.oidc.clients import presented_credentials
from sekisho.oidc.discovery import provider
from sekisho.oidc.errors import OAuthError
from sekisho.oidc.grant_events import grant_event
from sekisho.oidc.records import Client, Grant
from sekisho.oidc.token import client_endpoint
from sekisho.store.oidc import SqlOidc
from sekisho.store.oidc_tokens import SqlOidcTokens
from sekisho.store.repositories import SqlRepositories

if TYPE_CHECKING:
    from sekisho.oidc.provider import Provider

router = APIRouter(include_in_schema=False)


class Revocation:
    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    def revoke(
        self, headers: dict[str, str], form: dict[str, str], *, basic: bool, client_info: ClientInfo
    ) -> None:
        credentials = presented_credentials(headers, form, basic=basic)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required.")
        refresh_first = form.get("token_type_hint") != "access_token"
        self._provider.for_client(
            credentials,
            client_info,
            lambda repos, store, client, now: self._revoke(
                repos, store, client, token, refresh_first, client_info, now
            ),
        )

    def _revoke(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        token: str,
        refresh_first: bool,
        client_info: ClientInfo,
        now: datetime,
    ) -> OAuthError | None:
        finders = (self._refresh_token, self._access_token)
        for find in finders if refresh_first else finders[::-1]:
            found = find(repos, store, token, now)
            if found is None:
                continue
            kind, grant, jti = found
            if grant.client_id != client.id:
                _audit(
                    repos,
                    "oidc.token.revocation_refused",
                    "failure",
                    client,
                    grant,
                    client_info,
                    now,
                    kind,
                )
                return OAuthError("unauthorized_client", "The token was not issued to this client.")
            if jti is None:
                store.revoke_grant(grant.id, reason="revoked_by_client", now=now)
            else:
                SqlOidcTokens(repos.connection).revoke_access_token(jti, now=now)
            _audit(repos, "oidc.token.revoked", "success", client, grant, client_info, now, kind)
            return None
        return None

    def _refresh_token(
        self, repos: SqlRepositories, store: SqlOidc, token: str, now: datetime
    ) -> tuple[str, Grant, str | None] | None:
        record = SqlOidcTokens(repos.connection).refresh_token(
            self._provider.refresher.digest(token)
        )
        grant = store.grant(record.grant_id) if record else None
        return ("refresh_token", grant, None) if grant else None

    def _access_token(
        self, repos: SqlRepositories, store: SqlOidc, token: str, now: datetime
    ) -> tuple[str, Grant, str | None] | None:
        claims = tokens.access_token_claims(
            token,
            issuer=self._provider.issuer,
            published=self._provider.published_keys(store, now),
            now=now,
        )
        record = SqlOidcTokens(repos.connection).access_token(claims["jti"]) if claims else None
        grant = store.grant(record.grant_id) if record else None
        return ("access_token", grant, record.jti) if grant and record else None


def _audit(
    repos: SqlRepositories,
    event: str,
    outcome: str,
    client: Client,
    grant: Grant,
    client_info: ClientInfo,
    now: datetime,
    kind: str,
) -> None:
    repos.audit.append(
        grant_event(
            event,
            grant,
            client_info,
            now,
            outcome=outcome,
            detail={
                "client_id": client.id,
                "token_client_id": grant.client_id,
                "grant": grant.id,
                "acr": grant.acr,
                "token_type": kind,
            },
        )
    )


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    return await client_endpoint(request, Revocation(provider(request)).revoke)
