"""The OpenID Connect provider's storage: signing keys, clients, pending authorization
requests, grants, codes, access tokens and consent, over the caller's connection (one
transaction, shared with the session and audit repositories).

Invariant: a code is redeemed, and a pending request finished, by one
``UPDATE ... WHERE ... IS NULL ... RETURNING`` statement, so exactly one of any number
of concurrent callers wins (RFC 6749 §4.1.2: a code is used at most once).
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping

from sekisho.oidc.records import (
    AuthorizationRequest,
    Client,
    ConnectedApp,
    Grant,
    PendingRequest,
    RedeemedCode,
    SessionActivity,
    SigningKey,
)
from sekisho.store.prepared import Prepared
from sekisho.store.tables import (
    oidc_access_tokens,
    oidc_client_assertions,
    oidc_clients,
    oidc_codes,
    oidc_consents,
    oidc_grants,
    oidc_pending_requests,
    oidc_pushed_requests,
    oidc_signing_keys,
    sessions,
)

# Prepared (``store/prepared.py``): the code exchange, refresh, userinfo and
# authorization paths run these on every request.
_CODE_REDEEM = Prepared(
    update(oidc_codes)
    .where(
        oidc_codes.c.digest == bindparam("p_digest"),
        oidc_codes.c.redeemed_at.is_(None),
        oidc_codes.c.expires_at > bindparam("p_now"),
    )
    .values(redeemed_at=bindparam("p_now"))
    .returning(
        oidc_codes.c.grant_id,
        oidc_codes.c.client_id,
        oidc_codes.c.redirect_uri,
        oidc_codes.c.code_challenge,
        oidc_codes.c.expires_at,
    )
)
_CODE_SPENT = Prepared(
    select(oidc_codes.c.grant_id, oidc_codes.c.redeemed_at).where(
        oidc_codes.c.digest == bindparam("p_digest")
    )
)
_PENDING_GET = Prepared(
    select(oidc_pending_requests).where(
        oidc_pending_requests.c.id_digest == bindparam("p_digest"),
        oidc_pending_requests.c.finished_at.is_(None),
        oidc_pending_requests.c.expires_at > bindparam("p_now"),
    )
)
_PENDING_FINISH = Prepared(
    update(oidc_pending_requests)
    .where(
        oidc_pending_requests.c.id_digest == bindparam("p_digest"),
        oidc_pending_requests.c.finished_at.is_(None),
        oidc_pending_requests.c.expires_at > bindparam("p_now"),
    )
    .values(finished_at=bindparam("p_now"))
    .returning(oidc_pending_requests.c.id_digest)
)
_PUSHED_USE = Prepared(
    update(oidc_pushed_requests)
    .where(
        oidc_pushed_requests.c.digest == bindparam("p_digest"),
        oidc_pushed_requests.c.used_at.is_(None),
        oidc_pushed_requests.c.expires_at > bindparam("p_now"),
    )
    .values(used_at=bindparam("p_now"))
    .returning(oidc_pushed_requests.c.client_id, oidc_pushed_requests.c.parameters)
)
_KEY_STATES = Prepared(
    select(
        oidc_signing_keys.c.kid,
        oidc_signing_keys.c.signs_from,
        oidc_signing_keys.c.retired_at,
        oidc_signing_keys.c.published_until,
    ).order_by(oidc_signing_keys.c.created_at, oidc_signing_keys.c.kid)
)
_KEY_GET = select(oidc_signing_keys).where(oidc_signing_keys.c.kid == bindparam("p_kid"))
_GRANT_INSERT = Prepared(
    insert(oidc_grants),
    keys=(
        "id",
        "client_id",
        "user_id",
        "session_id",
        "scope",
        "nonce",
        "auth_time",
        "amr",
        "acr",
        "created_at",
        "confirmation_id",
    ),
)
_CODE_INSERT = Prepared(
    insert(oidc_codes),
    keys=("digest", "grant_id", "client_id", "redirect_uri", "code_challenge", "expires_at"),
)
_ACCESS_INSERT = Prepared(insert(oidc_access_tokens), keys=("jti", "grant_id", "expires_at"))
_CLIENT_GET = Prepared(select(oidc_clients).where(oidc_clients.c.id == bindparam("p_id")))
_GRANT_GET = Prepared(select(oidc_grants).where(oidc_grants.c.id == bindparam("p_id")))
#: An unexpired, unrevoked access token (``p_jti``) of an unrevoked grant.
_LIVE_ACCESS_TOKEN = (
    oidc_access_tokens.c.jti == bindparam("p_jti"),
    oidc_access_tokens.c.expires_at > bindparam("p_now"),
    oidc_access_tokens.c.revoked_at.is_(None),
    oidc_grants.c.revoked_at.is_(None),
)
_TOKEN_GRANT = Prepared(
    select(oidc_grants)
    .join(oidc_access_tokens, oidc_access_tokens.c.grant_id == oidc_grants.c.id)
    .where(*_LIVE_ACCESS_TOKEN)
)
_LIVE_SESSION_OF_GRANT = and_(
    sessions.c.id == oidc_grants.c.session_id,
    sessions.c.revoked_at.is_(None),
    sessions.c.expires_at > bindparam("p_now"),
)
_SESSION_OF_GRANT = (
    sessions.c.last_seen_at.label("session_last_seen_at"),
    sessions.c.aal.label("session_aal"),
    sessions.c.idle_seconds.label("session_idle_seconds"),
    sessions.c.expires_at.label("session_expires_at"),
)
_GRANT_AND_SESSION = Prepared(
    select(oidc_grants, *_SESSION_OF_GRANT)
    .outerjoin(sessions, _LIVE_SESSION_OF_GRANT)
    .where(oidc_grants.c.id == bindparam("p_id"))
)
_TOKEN_GRANT_AND_SESSION = Prepared(
    select(oidc_grants, *_SESSION_OF_GRANT)
    .join(oidc_access_tokens, oidc_access_tokens.c.grant_id == oidc_grants.c.id)
    .outerjoin(sessions, _LIVE_SESSION_OF_GRANT)
    .where(*_LIVE_ACCESS_TOKEN)
)
_SESSION_LIVE = Prepared(
    select(
        sessions.c.last_seen_at, sessions.c.aal, sessions.c.idle_seconds, sessions.c.expires_at
    ).where(
        sessions.c.id == bindparam("p_id"),
        sessions.c.revoked_at.is_(None),
        sessions.c.expires_at > bindparam("p_now"),
    )
)


#: A row by column name: SQLAlchemy's, or a prepared statement's (``Prepared.mapping``).
_Row = Mapping[str, Any] | RowMapping


def _client(row: _Row) -> Client:
    return Client(
        id=row["id"],
        name=row["name"],
        auth_method=row["auth_method"],
        application_type=row["application_type"],
        redirect_uris=tuple(json.loads(row["redirect_uris"])),
        post_logout_redirect_uris=tuple(json.loads(row["post_logout_redirect_uris"])),
        first_party=bool(row["first_party"]),
        scopes=tuple(row["scopes"].split()),
        id_token_lifetime=timedelta(seconds=row["id_token_lifetime"]),
        access_token_lifetime=timedelta(seconds=row["access_token_lifetime"]),
        created_at=row["created_at"],
        secret_digest=row["secret_digest"],
        secret_rotated_at=row["secret_rotated_at"],
        require_par=bool(row["require_par"]),
        jwks=json.loads(row["jwks"]) if row["jwks"] else None,
        id_token_alg=row["id_token_signed_response_alg"],
        backchannel_logout_uri=row["backchannel_logout_uri"],
        backchannel_logout_session_required=bool(row["backchannel_logout_session_required"]),
        subject_type=row["subject_type"],
        jwks_uri=row["jwks_uri"],
        sector_identifier_uri=row["sector_identifier_uri"],
        introspects=tuple(json.loads(row["introspects"])),
    )


def _settings(client: Client) -> dict[str, object]:
    """The columns of a client's changeable settings (oidc/client_admin.py UPDATABLE)."""
    return {
        "name": client.name,
        "redirect_uris": json.dumps(list(client.redirect_uris)),
        "post_logout_redirect_uris": json.dumps(list(client.post_logout_redirect_uris)),
        "first_party": client.first_party,
        "scopes": " ".join(client.scopes),
        "id_token_lifetime": int(client.id_token_lifetime.total_seconds()),
        "access_token_lifetime": int(client.access_token_lifetime.total_seconds()),
        "require_par": client.require_par,
        "id_token_signed_response_alg": client.id_token_alg,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "introspects": json.dumps(list(client.introspects)),
    }


_KNOWN_KEYS: weakref.WeakKeyDictionary[Engine, dict[str, SigningKey]] = weakref.WeakKeyDictionary()
_KNOWN_KEYS_LOCK = threading.Lock()


def _known_keys(connection: Connection) -> dict[str, SigningKey]:
    """The signing keys already read from this connection's database, by kid."""
    with _KNOWN_KEYS_LOCK:
        return _KNOWN_KEYS.setdefault(connection.engine, {})


def _key(row: RowMapping) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        alg=row["alg"],
        public_jwk=json.loads(row["public_jwk"]),
        sealed_private_jwk=row["sealed_private_jwk"],
        created_at=row["created_at"],
        signs_from=row["signs_from"],
        retired_at=row["retired_at"],
        published_until=row["published_until"],
    )


def _activity(
    last_seen_at: datetime, aal: int, idle_seconds: int | None, expires_at: datetime
) -> SessionActivity:
    own = timedelta(seconds=idle_seconds) if idle_seconds is not None else None
    return SessionActivity(last_seen_at, int(aal), own, expires_at)


def _session_of_grant(row: _Row) -> SessionActivity | None:
    """The session columns of a grant read with its live session (none: not live)."""
    if row["session_expires_at"] is None:
        return None
    return _activity(
        row["session_last_seen_at"],
        row["session_aal"],
        row["session_idle_seconds"],
        row["session_expires_at"],
    )


def _grant(row: _Row) -> Grant:
    return Grant(
        id=row["id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        session_id=row["session_id"],
        scope=tuple(row["scope"].split()),
        nonce=row["nonce"],
        auth_time=row["auth_time"],
        amr=tuple(row["amr"].split()),
        acr=row["acr"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        confirmation_id=row["confirmation_id"],
    )


def _request_values(request: AuthorizationRequest) -> dict[str, Any]:
    return {
        "client_id": request.client_id,
        "redirect_uri": request.redirect_uri,
        "scope": list(request.scope),
        "state": request.state,
        "nonce": request.nonce,
        "code_challenge": request.code_challenge,
        "response_mode": request.response_mode,
        "prompt": list(request.prompt),
        "max_age": request.max_age,
        "login_hint": request.login_hint,
        "ui_locales": list(request.ui_locales),
        "acr_values": list(request.acr_values),
        "authorization_details": list(request.authorization_details),
    }


def _request(values: dict[str, Any]) -> AuthorizationRequest:
    return AuthorizationRequest(
        client_id=values["client_id"],
        redirect_uri=values["redirect_uri"],
        scope=tuple(values["scope"]),
        state=values["state"],
        nonce=values["nonce"],
        code_challenge=values["code_challenge"],
        response_mode=values["response_mode"],
        prompt=tuple(values["prompt"]),
        max_age=values["max_age"],
        login_hint=values["login_hint"],
        ui_locales=tuple(values["ui_locales"]),
        acr_values=tuple(values.get("acr_values", ())),
        authorization_details=tuple(values.get("authorization_details", ())),
    )


class SqlOidc:
    """Every provider artefact one transaction can touch."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- signing keys ----------------------------------------------------------------

    def add_key(self, key: SigningKey) -> None:
        self._c.execute(
            insert(oidc_signing_keys).values(
                kid=key.kid,
                alg=key.alg,
                public_jwk=json.dumps(key.public_jwk, sort_keys=True),
                sealed_private_jwk=key.sealed_private_jwk,
                created_at=key.created_at,
                signs_from=key.signs_from,
                retired_at=key.retired_at,
                published_until=key.published_until,
            )
        )

    def signing_keys(self) -> list[SigningKey]:
        """Every key, oldest first, as the database holds them now.

        Which keys exist and when each signs, retires and leaves the JWKS is read on
        every call (a rotation or retirement by another process is seen at once); a
        key's own material (algorithm, public JWK, sealed private JWK, creation), which
        never changes for a kid, is read and parsed once per database and process."""
        known = _known_keys(self._c)
        keys = []
        for kid, signs_from, retired_at, published_until in _KEY_STATES.all(self._c, {}):
            key = known.get(kid)
            if key is None:
                row = self._c.execute(_KEY_GET, {"p_kid": kid}).mappings().first()
                if row is None:  # dropped since (PostgreSQL, read committed)
                    continue
                key = known[kid] = _key(row)
            elif (key.signs_from, key.retired_at, key.published_until) != (
                signs_from,
                retired_at,
                published_until,
            ):
                key = known[kid] = replace(
                    key,
                    signs_from=signs_from,
                    retired_at=retired_at,
                    published_until=published_until,
                )
            keys.append(key)
        if len(known) > len(keys):  # keys dropped from the database
            for kid in set(known) - {key.kid for key in keys}:
                known.pop(kid, None)
        return keys

    def retire_key(self, kid: str, *, at: datetime, published_until: datetime) -> bool:
        """Stop a key signing at ``at`` (sooner, for one already due to retire later)."""
        row = self._c.execute(
            update(oidc_signing_keys)
            .where(
                oidc_signing_keys.c.kid == kid,
                or_(oidc_signing_keys.c.retired_at.is_(None), oidc_signing_keys.c.retired_at > at),
            )
            .values(retired_at=at, published_until=published_until)
            .returning(oidc_signing_keys.c.kid)
        ).first()
        return row is not None

    def drop_unpublished_keys(self, *, now: datetime) -> int:
        """Delete retired keys whose tokens have all expired (no longer in the JWKS)."""
        result = self._c.execute(
            delete(oidc_signing_keys)
            .where(
                oidc_signing_keys.c.published_until.is_not(None),
                oidc_signing_keys.c.published_until <= now,
            )
            .returning(oidc_signing_keys.c.kid)
        )
        return len(result.all())

    # -- clients ---------------------------------------------------------------------

    def add_client(self, client: Client) -> None:
        self._c.execute(
            insert(oidc_clients).values(
                id=client.id,
                secret_digest=client.secret_digest,
                auth_method=client.auth_method,
                application_type=client.application_type,
                created_at=client.created_at,
                secret_rotated_at=client.secret_rotated_at,
                jwks=json.dumps(client.jwks, sort_keys=True) if client.jwks else None,
                subject_type=client.subject_type,
                jwks_uri=client.jwks_uri,
                sector_identifier_uri=client.sector_identifier_uri,
                **_settings(client),
            )
        )

    def update_client(self, client: Client) -> bool:
        """Write the settings ``sekisho clients update`` may change (:func:`_settings`);
        False when there is no such client."""
        row = self._c.execute(
            update(oidc_clients)
            .where(oidc_clients.c.id == client.id)
            .values(**_settings(client))
            .returning(oidc_clients.c.id)
        ).first()
        return row is not None

    def client(self, client_id: str) -> Client | None:
        row = _CLIENT_GET.mapping(self._c, {"p_id": client_id})
        return _client(row) if row else None

    def clients(self) -> list[Client]:
        rows = self._c.execute(select(oidc_clients).order_by(oidc_clients.c.created_at))
        return [_client(row) for row in rows.mappings()]

    def set_client_secret(self, client_id: str, digest: str, *, now: datetime) -> bool:
        row = self._c.execute(
            update(oidc_clients)
            .where(oidc_clients.c.id == client_id, oidc_clients.c.secret_digest.is_not(None))
            .values(secret_digest=digest, secret_rotated_at=now)
            .returning(oidc_clients.c.id)
        ).first()
        return row is not None

    def set_client_jwks(
        self, client_id: str, jwks: dict[str, Any] | None, jwks_uri: str | None
    ) -> bool:
        """Replace a ``private_key_jwt`` client's keys, inline or by URI (the caller
        passes exactly one); False for any other client."""
        row = self._c.execute(
            update(oidc_clients)
            .where(oidc_clients.c.id == client_id, oidc_clients.c.auth_method == "private_key_jwt")
            .values(jwks=json.dumps(jwks, sort_keys=True) if jwks else None, jwks_uri=jwks_uri)
            .returning(oidc_clients.c.id)
        ).first()
        return row is not None

    def remove_client(self, client_id: str, *, now: datetime) -> bool:
        """Delete a client; its grants end first (tokens refused from now on)."""
        self._c.execute(
            update(oidc_grants)
            .where(oidc_grants.c.client_id == client_id, oidc_grants.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="client_removed")
        )
        row = self._c.execute(
            delete(oidc_clients).where(oidc_clients.c.id == client_id).returning(oidc_clients.c.id)
        ).first()
        return row is not None

    # -- pending authorization requests ----------------------------------------------

    def add_pending(
        self, id_digest: str, request: AuthorizationRequest, *, now: datetime, expires_at: datetime
    ) -> None:
        self._c.execute(
            insert(oidc_pending_requests).values(
                id_digest=id_digest,
                client_id=request.client_id,
                parameters=json.dumps(_request_values(request), sort_keys=True),
                created_at=now,
                expires_at=expires_at,
            )
        )

    def pending(self, id_digest: str, *, now: datetime) -> PendingRequest | None:
        row = _PENDING_GET.mapping(self._c, {"p_digest": id_digest, "p_now": now})
        if row is None:
            return None
        return PendingRequest(
            request=_request(json.loads(row["parameters"])),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )

    def finish_pending(self, id_digest: str, *, now: datetime) -> bool:
        row = _PENDING_FINISH.first(self._c, {"p_digest": id_digest, "p_now": now})
        return row is not None

    # -- pushed authorization requests (RFC 9126) ------------------------------------

    def add_pushed(
        self, digest: str, request: AuthorizationRequest, *, now: datetime, expires_at: datetime
    ) -> None:
        self._c.execute(
            insert(oidc_pushed_requests).values(
                digest=digest,
                client_id=request.client_id,
                parameters=json.dumps(_request_values(request), sort_keys=True),
                created_at=now,
                expires_at=expires_at,
            )
        )

    def use_pushed(self, digest: str, *, now: datetime) -> AuthorizationRequest | None:
        """Spend a live pushed request, whichever client presents it: the one winner gets
        the request (its ``client_id`` says whose it is), everyone else None."""
        row = _PUSHED_USE.mapping(self._c, {"p_digest": digest, "p_now": now})
        if row is None:
            return None
        return _request(json.loads(row["parameters"]))

    # -- client assertions (RFC 7523 §3 "jti") ----------------------------------------

    def spend_assertion(self, digest: str, *, client_id: str, expires_at: datetime) -> bool:
        """Record an assertion id; False when it was seen before. One ``INSERT ... ON
        CONFLICT DO NOTHING RETURNING``: of concurrent requests with one ``jti``, exactly
        one gets True."""
        dialect = postgresql if self._c.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(oidc_client_assertions)
            .values(digest=digest, client_id=client_id, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=[oidc_client_assertions.c.digest])
            .returning(oidc_client_assertions.c.digest)
        )
        return self._c.execute(statement).first() is not None

    # -- grants, codes and tokens ----------------------------------------------------

    def add_grant(self, grant: Grant) -> None:
        _GRANT_INSERT.run(
            self._c,
            {
                "id": grant.id,
                "client_id": grant.client_id,
                "user_id": grant.user_id,
                "session_id": grant.session_id,
                "scope": " ".join(grant.scope),
                "nonce": grant.nonce,
                "auth_time": grant.auth_time,
                "amr": " ".join(grant.amr),
                "acr": grant.acr,
                "created_at": grant.created_at,
                "confirmation_id": grant.confirmation_id,
            },
        )

    def grant(self, grant_id: str) -> Grant | None:
        row = _GRANT_GET.mapping(self._c, {"p_id": grant_id})
        return _grant(row) if row else None

    def grant_and_session(
        self, grant_id: str, *, now: datetime
    ) -> tuple[Grant, SessionActivity | None] | None:
        """The grant, with its Sekisho session's activity if that session is unrevoked
        and unexpired (as :meth:`session_activity`), in one statement."""
        found = _GRANT_AND_SESSION.mapping(self._c, {"p_id": grant_id, "p_now": now})
        return (_grant(found), _session_of_grant(found)) if found else None

    def revoke_grant(self, grant_id: str, *, reason: str, now: datetime) -> bool:
        row = self._c.execute(
            update(oidc_grants)
            .where(oidc_grants.c.id == grant_id, oidc_grants.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .returning(oidc_grants.c.id)
        ).first()
        return row is not None

    def add_code(
        self,
        digest: str,
        *,
        grant_id: str,
        client_id: str,
        redirect_uri: str,
        code_challenge: str,
        expires_at: datetime,
    ) -> None:
        _CODE_INSERT.run(
            self._c,
            {
                "digest": digest,
                "grant_id": grant_id,
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "code_challenge": code_challenge,
                "expires_at": expires_at,
            },
        )

    def redeem_code(self, digest: str, *, now: datetime) -> RedeemedCode | None:
        """Spend a live code: its bindings for the one winner, else None."""
        row = _CODE_REDEEM.mapping(self._c, {"p_digest": digest, "p_now": now})
        if row is None:
            return None
        return RedeemedCode(
            grant_id=row["grant_id"],
            client_id=row["client_id"],
            redirect_uri=row["redirect_uri"],
            code_challenge=row["code_challenge"],
            expires_at=row["expires_at"],
        )

    def redeemed_code_grant(self, digest: str) -> str | None:
        """The grant of a code that was already redeemed (a replay), else None."""
        row = _CODE_SPENT.first(self._c, {"p_digest": digest})
        if row is None:
            return None
        grant_id, redeemed_at = row
        return None if redeemed_at is None else str(grant_id)

    def add_access_token(self, jti: str, *, grant_id: str, expires_at: datetime) -> None:
        _ACCESS_INSERT.run(self._c, {"jti": jti, "grant_id": grant_id, "expires_at": expires_at})

    def grant_and_session_of_access_token(
        self, jti: str, *, now: datetime
    ) -> tuple[Grant, SessionActivity | None] | None:
        """:meth:`grant_of_access_token` with its session's activity as
        :meth:`grant_and_session` reads it, in one statement."""
        found = _TOKEN_GRANT_AND_SESSION.mapping(self._c, {"p_jti": jti, "p_now": now})
        return (_grant(found), _session_of_grant(found)) if found else None

    def grant_of_access_token(self, jti: str, *, now: datetime) -> Grant | None:
        """The live grant of an unexpired, unrevoked access token, else None."""
        row = _TOKEN_GRANT.mapping(self._c, {"p_jti": jti, "p_now": now})
        return _grant(row) if row else None

    def session_activity(self, session_id: str, *, now: datetime) -> SessionActivity | None:
        """When an unrevoked, unexpired Sekisho session was last seen, its AAL, the idle
        limit it was issued with (a tier's), if any, and its absolute end."""
        row = _SESSION_LIVE.first(self._c, {"p_id": session_id, "p_now": now})
        if row is None:
            return None
        last_seen_at, aal, idle_seconds, expires_at = row
        return _activity(last_seen_at, aal, idle_seconds, expires_at)

    # -- consent ---------------------------------------------------------------------

    def consented_scopes(self, user_id: str, client_id: str) -> frozenset[str]:
        row = self._c.execute(
            select(oidc_consents.c.scopes).where(
                oidc_consents.c.user_id == user_id, oidc_consents.c.client_id == client_id
            )
        ).first()
        return frozenset(row.scopes.split()) if row else frozenset()

    def remember_consent(
        self, user_id: str, client_id: str, scopes: frozenset[str], *, now: datetime
    ) -> None:
        dialect = postgresql if self._c.dialect.name == "postgresql" else sqlite
        value = " ".join(sorted(scopes))
        statement = dialect.insert(oidc_consents).values(
            user_id=user_id, client_id=client_id, scopes=value, granted_at=now
        )
        self._c.execute(
            statement.on_conflict_do_update(
                index_elements=[oidc_consents.c.user_id, oidc_consents.c.client_id],
                set_={"scopes": value, "granted_at": now},
            )
        )

    def connected_apps(self, user_id: str) -> list[ConnectedApp]:
        """The third-party clients the user consented to, most recent first."""
        rows = self._c.execute(
            select(
                oidc_clients.c.id,
                oidc_clients.c.name,
                oidc_consents.c.scopes,
                oidc_consents.c.granted_at,
            )
            .join(oidc_clients, oidc_clients.c.id == oidc_consents.c.client_id)
            .where(oidc_consents.c.user_id == user_id, oidc_clients.c.first_party.is_(False))
            .order_by(oidc_consents.c.granted_at.desc(), oidc_clients.c.id)
        ).all()
        return [
            ConnectedApp(
                client_id=row.id,
                name=row.name,
                scopes=tuple(row.scopes.split()),
                granted_at=row.granted_at,
            )
            for row in rows
        ]

    def disconnect(self, user_id: str, client_id: str, *, now: datetime) -> tuple[bool, int]:
        """Forget the user's consent to a client and end every grant the client holds for
        the user (its tokens are refused from now on); whether a consent existed, and
        how many grants ended."""
        consent = self._c.execute(
            delete(oidc_consents)
            .where(oidc_consents.c.user_id == user_id, oidc_consents.c.client_id == client_id)
            .returning(oidc_consents.c.client_id)
        ).first()
        ended = self._c.execute(
            update(oidc_grants)
            .where(
                oidc_grants.c.user_id == user_id,
                oidc_grants.c.client_id == client_id,
                oidc_grants.c.revoked_at.is_(None),
            )
            .values(revoked_at=now, revoked_reason="consent_revoked")
            .returning(oidc_grants.c.id)
        ).all()
        return consent is not None, len(ended)
