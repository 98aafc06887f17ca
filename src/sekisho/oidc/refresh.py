"""Refresh tokens: the ``refresh_token`` grant (RFC 6749 §6; OIDC Core §12) with rotation
and reuse detection (RFC 9700 §4.14.2; OWASP ASVS 5.0 10.4.5).

When one is issued: with the code's tokens, when the grant's scope holds
``offline_access`` (OIDC Core §11), which a client may ask only when its registered
scopes allow it (``sekisho clients add --scope offline_access``). Unlike OIDC Core's
"offline" reading, a Sekisho refresh token is tied to the session it came from, like
Duende IdentityServer's ``CoordinateLifetimeWithUserSession``: a securities firm's
sign-out must sign out every application.

Invariants:

- A refresh token is 256 random bits, shown once, stored only as a keyed hash, bound
  to its client; each use spends it (one ``UPDATE ... WHERE used_at IS NULL RETURNING``,
  so of concurrent refreshes one wins) and issues the next one of its family, the grant.
- A spent token presented again is reuse: the grant is revoked (every refresh and
  access token it issued ends), ``oidc.refresh.reused`` is audited, and the answer is
  ``invalid_grant``. So of two concurrent refreshes, the loser also ends the family.
- A refresh re-checks, like a code redemption, that the grant stands, its Sekisho
  session stands (not signed out, revoked, expired or idle past its limit) and the
  account is active; it never outlives the session's absolute end. A removed client's
  grants are deleted with it.
- The new ID token keeps the grant's ``auth_time``, ``acr``, ``amr`` and ``sid``, and
  carries no ``nonce`` (OIDC Core §12.2).
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sekisho.core.clients import ClientInfo
from sekisho.oidc.clients import presented_credentials
from sekisho.oidc.errors import OAuthError
from sekisho.oidc.grant_events import grant_event
from sekisho.oidc.records import Client, Grant
from sekisho.store.oidc import SqlOidc
from sekisho.store.oidc_tokens import SqlOidcTokens
from sekisho.store.repositories import SqlRepositories

if TYPE_CHECKING:
    from sekisho.oidc.provider import Provider

OFFLINE_ACCESS = "offline_access"
REFRESH_PURPOSE = "oidc-refresh-token"
MAX_TOKEN = 256


def _invalid() -> OAuthError:
    return OAuthError("invalid_grant", "The refresh token is invalid or expired.")


class Refresher:
    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    def digest(self, token: str) -> str:
        return self._provider.keys.digest(REFRESH_PURPOSE, token[:MAX_TOKEN])

    def issue(self, store: SqlOidcTokens, grant: Grant, *, now: datetime, ends: datetime) -> str:
        """A new refresh token of ``grant``'s family, living until ``ends``, its live
        session's absolute end (:meth:`Provider.session_end`, read by the caller
        in the same transaction)."""
        token = secrets.token_urlsafe(32)
        store.add_refresh_token(
            self.digest(token),
            grant_id=grant.id,
            client_id=grant.client_id,
            created_at=now,
            expires_at=ends,
        )
        return token

    def refresh(
        self, headers: dict[str, str], form: dict[str, str], *, basic: bool, client_info: ClientInfo
    ) -> dict[str, Any]:
        """RFC 6749 §6. Refusals are raised after the commit, so a spent token, a
        revoked family and their audit events stay; a bad ``scope`` is refused before
        anything is written."""
        credentials = presented_credentials(headers, form, basic=basic)
        presented = form.get("refresh_token")
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is required.")
        asked = form.get("scope")
        return self._provider.for_client(
            credentials,
            client_info,
            lambda repos, store, client, now: self._rotate(
                repos, store, client, presented, asked, client_info, now
            ),
        )

    def _rotate(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        client: Client,
        presented: str,
        asked: str | None,
        client_info: ClientInfo,
        now: datetime,
    ) -> dict[str, Any] | OAuthError:
        refresh_tokens = SqlOidcTokens(repos.connection)
        digest = self.digest(presented)
        grant_id = refresh_tokens.spend_refresh_token(digest, client_id=client.id, now=now)
        if grant_id is None:
            return self._refuse_unspendable(
                repos, store, refresh_tokens, client, digest, now, client_info
            )
        grant, seen = store.grant_and_session(grant_id, now=now) or (None, None)
        reason: str | None = None
        session_end = None
        if grant is None or grant.revoked_at is not None:
            reason = "grant_revoked"
        else:
            session_end = self._provider.session_end(seen, now)
            reason = "session_ended" if session_end is None else None
        user = repos.users.by_id(grant.user_id) if grant is not None else None
        if reason is None and (user is None or user.status != "active"):
            reason = "account_inactive"
        if reason is not None or grant is None or user is None or session_end is None:
            store.revoke_grant(grant_id, reason=reason or "invalid", now=now)
            self._audit(
                repos,
                "oidc.token.refused",
                "failure",
                client,
                grant,
                client_info,
                now,
                reason=reason or "invalid",
                grant_id=grant_id,
            )
            return _invalid()
        scope = grant.scope
        if asked is not None:
            scope = tuple(dict.fromkeys(asked.split()))
            if "openid" not in scope or not set(scope) <= set(grant.scope):
                # Raised inside the transaction: it rolls back and the token stays unspent.
                raise OAuthError(
                    "invalid_scope", "The scope must hold openid and nothing beyond the grant."
                )
        issued = dataclasses.replace(grant, scope=scope, nonce=None)
        body = self._provider.issue_tokens(
            repos,
            store,
            client,
            issued,
            user,
            client_info=client_info,
            now=now,
            event="oidc.token.refreshed",
        )
        body["refresh_token"] = self.issue(refresh_tokens, grant, now=now, ends=session_end)
        return body

    def _refuse_unspendable(
        self,
        repos: SqlRepositories,
        store: SqlOidc,
        refresh_tokens: SqlOidcTokens,
        client: Client,
        digest: str,
        now: datetime,
        client_info: ClientInfo,
    ) -> dict[str, Any] | OAuthError:
        """Unknown, another client's, expired, or spent: only the last is reuse."""
        found = refresh_tokens.refresh_token(digest)
        if found is None:
            self._audit(
                repos,
                "oidc.token.refused",
                "failure",
                client,
                None,
                client_info,
                now,
                reason="unknown",
            )
            return _invalid()
        grant = store.grant(found.grant_id)
        if found.client_id != client.id:
            reason = "other_client"
        elif found.used_at is not None:
            store.revoke_grant(found.grant_id, reason="refresh_reused", now=now)
            self._audit(
                repos,
                "oidc.refresh.reused",
                "failure",
                client,
                grant,
                client_info,
                now,
                grant_id=found.grant_id,
            )
            return _invalid()
        else:
            reason = "expired"
        self._audit(
            repos,
            "oidc.token.refused",
            "failure",
            client,
            grant,
            client_info,
            now,
            reason=reason,
            grant_id=found.grant_id,
        )
        return _invalid()

    @staticmethod
    def _audit(
        repos: SqlRepositories,
        event: str,
        outcome: str,
        client: Client,
        grant: Grant | None,
        client_info: ClientInfo,
        now: datetime,
        grant_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        """With the grant's user, session, ``amr`` and ``acr`` when it is known; the
        presenting client's id always (a token is never written down)."""
        facts: dict[str, str] = {"client_id": client.id}
        if reason is not None:
            facts["reason"] = reason
        if grant_id is not None:
            facts["grant"] = grant_id
        if grant is not None:
            facts["acr"] = grant.acr
        repos.audit.append(
            grant_event(event, grant, client_info, now, outcome=outcome, detail=facts)
        )
