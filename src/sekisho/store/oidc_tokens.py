"""Refresh tokens and the access-token deny-list, over the caller's connection (one
transaction, shared with :class:`sekisho.store.oidc.SqlOidc` and the audit log).

Invariant: a refresh token is spent by one ``UPDATE ... WHERE used_at IS NULL ...
RETURNING``, so of any number of concurrent refreshes with the same token exactly one
wins (on PostgreSQL the losers wait for the winner's row lock and then find the row
spent; on SQLite writers queue on the process lock). A spent row is kept until its
family ends, so presenting it again is recognised as reuse (RFC 9700 §4.14.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from sekisho.store.prepared import Prepared
from sekisho.store.tables import oidc_access_tokens, oidc_refresh_tokens

# Prepared (``store/prepared.py``): the token, refresh and userinfo paths run these.
_REFRESH_SPEND = Prepared(
    update(oidc_refresh_tokens)
    .where(
        oidc_refresh_tokens.c.digest == bindparam("p_digest"),
        oidc_refresh_tokens.c.client_id == bindparam("p_client"),
        oidc_refresh_tokens.c.used_at.is_(None),
        oidc_refresh_tokens.c.expires_at > bindparam("p_now"),
    )
    .values(used_at=bindparam("p_now"))
    .returning(oidc_refresh_tokens.c.grant_id)
)
_REFRESH_INSERT = Prepared(
    insert(oidc_refresh_tokens),
    keys=("digest", "grant_id", "client_id", "created_at", "expires_at"),
)
_REFRESH_GET = Prepared(
    select(oidc_refresh_tokens).where(oidc_refresh_tokens.c.digest == bindparam("p_digest"))
)
_ACCESS_GET = Prepared(
    select(oidc_access_tokens).where(oidc_access_tokens.c.jti == bindparam("p_jti"))
)
_ACCESS_REVOKE = Prepared(
    update(oidc_access_tokens)
    .where(
        oidc_access_tokens.c.jti == bindparam("p_jti"),
        oidc_access_tokens.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("p_now"))
    .returning(oidc_access_tokens.c.jti)
)


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    grant_id: str
    client_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None

    def usable(self, now: datetime) -> bool:
        """Unspent and unexpired (its grant, session and account are checked apart)."""
        return self.used_at is None and self.expires_at > now


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    jti: str
    grant_id: str
    expires_at: datetime
    revoked_at: datetime | None


class SqlOidcTokens:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- refresh tokens --------------------------------------------------------------

    def add_refresh_token(
        self,
        digest: str,
        *,
        grant_id: str,
        client_id: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        _REFRESH_INSERT.run(
            self._c,
            {
                "digest": digest,
                "grant_id": grant_id,
                "client_id": client_id,
                "created_at": created_at,
                "expires_at": expires_at,
            },
        )

    def spend_refresh_token(self, digest: str, *, client_id: str, now: datetime) -> str | None:
        """Spend a usable refresh token of this client: its grant id for the one
        winner, else None (unknown, another client's, spent or expired)."""
        row = _REFRESH_SPEND.first(
            self._c, {"p_digest": digest, "p_client": client_id, "p_now": now}
        )
        return str(row[0]) if row else None

    def refresh_token(self, digest: str) -> RefreshTokenRecord | None:
        row = _REFRESH_GET.mapping(self._c, {"p_digest": digest})
        if row is None:
            return None
        return RefreshTokenRecord(
            grant_id=row["grant_id"],
            client_id=row["client_id"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            used_at=row["used_at"],
        )

    # -- access tokens ---------------------------------------------------------------

    def access_token(self, jti: str) -> AccessTokenRecord | None:
        row = _ACCESS_GET.mapping(self._c, {"p_jti": jti})
        if row is None:
            return None
        return AccessTokenRecord(
            jti=row["jti"],
            grant_id=row["grant_id"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
        )

    def revoke_access_token(self, jti: str, *, now: datetime) -> bool:
        """Put one access token on the deny-list (RFC 7009 §2); False if it already was."""
        row = _ACCESS_REVOKE.first(self._c, {"p_jti": jti, "p_now": now})
        return row is not None
