"""Managing relying parties (issue 9 "Clients"): the one implementation behind
``sekisho clients ...`` and the admin API's ``/api/v1/admin/clients``.

Invariant: a client secret is returned once, by ``add`` or ``rotate_secret``, and
stored only as its keyed hash (oidc/clients.py); every change writes one audit event,
naming who made it (``cli`` or the API key), in the same transaction. A
``sector_identifier_uri`` is fetched (oidc/metadata_fetch.py) and must list the
redirect URIs before anything is stored; a ``jwks_uri`` must be fetchable under this
deployment's fetch rules, and is fetched when the client first authenticates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent
from sekisho.oidc import clients
from sekisho.oidc.clients import NewClient, RegistrationError
from sekisho.oidc.metadata_fetch import FetchRefused, MetadataFetcher
from sekisho.oidc.records import Client
from sekisho.store.database import Database
from sekisho.store.oidc import SqlOidc


class ClientExists(RegistrationError):
    """The id asked for is taken."""


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What an operator chooses when registering a client."""

    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    auth_method: str = "client_secret_basic"
    application_type: str = "web"
    first_party: bool = False
    scopes: tuple[str, ...] = ("openid", "email")
    id_token_lifetime: timedelta = clients.DEFAULT_ID_TOKEN_LIFETIME
    access_token_lifetime: timedelta = clients.DEFAULT_ACCESS_TOKEN_LIFETIME
    client_id: str | None = None
    jwks: object = None
    require_par: bool = False
    id_token_alg: str = "ES256"  # noqa: S105 (an algorithm name, not a secret)
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    subject_type: str = "public"
    jwks_uri: str | None = None
    sector_identifier_uri: str | None = None
    introspects: tuple[str, ...] = ()


UPDATABLE = frozenset(
    {
        "name",
        "redirect_uris",
        "post_logout_redirect_uris",
        "backchannel_logout_uri",
        "backchannel_logout_session_required",
        "first_party",
        "scopes",
        "require_par",
        "id_token_lifetime",
        "access_token_lifetime",
        "id_token_alg",
        "introspects",
    }
)
"""The :class:`Client` fields ``update`` changes. Not the id, the auth method and keys
(``rotate-secret``, ``set-jwks``), the application type (it decides which redirect URIs
are registrable), nor the subject type or sector identifier URI: either would change
every ``sub`` the client has seen, so its users would look like new people to it
(register a new client instead)."""


class ClientChanged(RegistrationError):
    """The client changed while an update was being checked; nothing was written."""


def describe(client: Client) -> dict[str, object]:
    """A client's settings as JSON values (never its secret)."""
    return {
        "client_id": client.id,
        "name": client.name,
        "token_endpoint_auth_method": client.auth_method,
        "application_type": client.application_type,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "first_party": client.first_party,
        "scopes": list(client.scopes),
        "id_token_lifetime_seconds": int(client.id_token_lifetime.total_seconds()),
        "access_token_lifetime_seconds": int(client.access_token_lifetime.total_seconds()),
        "created_at": client.created_at.isoformat(),
        "secret_rotated_at": (
            client.secret_rotated_at.isoformat() if client.secret_rotated_at else None
        ),
        "require_pushed_authorization_requests": client.require_par,
        "id_token_signed_response_alg": client.id_token_alg,
        "jwks": client.jwks,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "subject_type": client.subject_type,
        "jwks_uri": client.jwks_uri,
        "sector_identifier_uri": client.sector_identifier_uri,
        "introspects": list(client.introspects),
    }


class ClientAdmin:
    def __init__(self, database: Database, keys: Keyring, fetcher: MetadataFetcher) -> None:
        self._database = database
        self._keys = keys
        self._fetcher = fetcher

    def all(self) -> list[Client]:
        with self._database.reading() as repos:
            return SqlOidc(repos.connection).clients()

    def one(self, client_id: str) -> Client | None:
        with self._database.reading() as repos:
            return SqlOidc(repos.connection).client(client_id)

    def add(self, settings: ClientSettings, *, now: datetime, actor: str) -> NewClient:
        """Register a client (raises :class:`RegistrationError` or :class:`ClientExists`)."""
        made = clients.register(
            self._keys,
            name=settings.name,
            redirect_uris=settings.redirect_uris,
            post_logout_redirect_uris=settings.post_logout_redirect_uris,
            auth_method=settings.auth_method,
            application_type=settings.application_type,
            first_party=settings.first_party,
            scopes=list(settings.scopes),
            id_token_lifetime=settings.id_token_lifetime,
            access_token_lifetime=settings.access_token_lifetime,
            now=now,
            client_id=settings.client_id,
            jwks=settings.jwks,
            require_par=settings.require_par,
            id_token_alg=settings.id_token_alg,
            backchannel_logout_uri=settings.backchannel_logout_uri,
            backchannel_logout_session_required=settings.backchannel_logout_session_required,
            subject_type=settings.subject_type,
            jwks_uri=settings.jwks_uri,
            sector_identifier_uri=settings.sector_identifier_uri,
            introspects=settings.introspects,
        )
        if made.client.jwks_uri is not None:
            self._fetchable(made.client.jwks_uri, "JWKS URI")
        if made.client.sector_identifier_uri is not None:
            self.check_sector(made.client.sector_identifier_uri, made.client.redirect_uris)
        with self._database.transaction() as repos:
            store = SqlOidc(repos.connection)
            if store.client(made.client.id) is not None:
                raise ClientExists(f"client {made.client.id} already exists")
            _check_introspected(store, made.client, known=())
            store.add_client(made.client)
            repos.audit.append(_event("oidc.client_added", made.client.id, now, actor))
        return made

    def update(
        self, client_id: str, changes: dict[str, object], *, now: datetime, actor: str
    ) -> Client | None:
        """Change the settings of :data:`UPDATABLE` named in ``changes`` (field names of
        :class:`Client`), checked by :func:`clients.checked` as at registration; the
        changed client, or None when there is none. A pairwise client's redirect URIs are
        checked against its sector as at registration, and may not move it to another
        sector (every ``sub`` would change). Raises :class:`RegistrationError`.

        Codes and pending or pushed requests issued for a redirect URI that is removed
        are refused from then on (oidc/provider.py checks the URI is still registered
        when it issues a code and when it redeems one)."""
        unknown = sorted(set(changes) - UPDATABLE)
        if unknown:
            raise RegistrationError(f"cannot change {', '.join(unknown)} with update")
        before = self.one(client_id)
        if before is None:
            return None
        after = clients.checked(replace(before, **changes))  # type: ignore[arg-type]
        if after.subject_type == "pairwise" and after.sector_identifier != before.sector_identifier:
            raise RegistrationError(
                "these redirect URIs would move the pairwise client to another sector,"
                " changing every sub it has seen"
            )
        if after.sector_identifier_uri is not None and after.redirect_uris != before.redirect_uris:
            self.check_sector(after.sector_identifier_uri, after.redirect_uris)
        changed = sorted(
            name for name in UPDATABLE if getattr(after, name) != getattr(before, name)
        )
        with self._database.transaction() as repos:
            store = SqlOidc(repos.connection)
            if store.client(client_id) != before:
                raise ClientChanged("the client changed meanwhile; nothing was written, try again")
            _check_introspected(store, after, known=before.introspects)
            store.update_client(after)
            repos.audit.append(
                _event("oidc.client_updated", client_id, now, actor, changed=changed)
            )
        return after

    def rotate_secret(self, client_id: str, *, now: datetime, actor: str) -> str | None:
        """A new secret for a confidential client (the old one stops working at once);
        None when there is no such confidential client."""
        secret = clients.new_secret()
        with self._database.transaction() as repos:
            changed = SqlOidc(repos.connection).set_client_secret(
                client_id, clients.secret_digest(self._keys, client_id, secret), now=now
            )
            if not changed:
                return None
            repos.audit.append(_event("oidc.client_secret_rotated", client_id, now, actor))
        return secret

    def set_jwks(
        self,
        client_id: str,
        *,
        jwks: object = None,
        jwks_uri: str | None = None,
        now: datetime,
        actor: str,
    ) -> bool:
        """Replace a ``private_key_jwt`` client's public keys with an inline set or a
        JWKS URI, exactly one (the client's own key rotation: register the new set, with
        the old key still in it until the client signs with the new one; a client at a
        JWKS URI rotates there). Raises :class:`RegistrationError` for unacceptable
        keys; False when there is no such ``private_key_jwt`` client."""
        checked, uri = clients.registrable_keys("private_key_jwt", jwks, jwks_uri)
        if uri is not None:
            self._fetchable(uri, "JWKS URI")
        with self._database.transaction() as repos:
            if not SqlOidc(repos.connection).set_client_jwks(client_id, checked, uri):
                return False
            repos.audit.append(_event("oidc.client_jwks_replaced", client_id, now, actor))
        return True

    def check_sector(self, uri: str, redirect_uris: tuple[str, ...]) -> None:
        """Fetch a ``sector_identifier_uri`` and check that it lists every redirect URI
        (OIDC Core §8.1). Whatever changes a pairwise client's redirect URIs calls this
        again. Raises :class:`RegistrationError`."""
        self._fetchable(uri, "sector identifier URI")
        try:
            fetched = self._fetcher.fetch_json(uri)
        except FetchRefused as error:
            raise RegistrationError(
                f"the sector identifier URI could not be fetched ({error.code.value})"
            ) from error
        clients.check_sector_listing(fetched.document, redirect_uris)

    def _fetchable(self, uri: str, what: str) -> None:
        try:
            self._fetcher.check_uri(uri)
        except FetchRefused as error:
            raise RegistrationError(
                f"{uri}: this deployment does not fetch a {what} there ({error.code.value})"
            ) from error

    def remove(self, client_id: str, *, now: datetime, actor: str) -> bool:
        """Remove a client; every token it holds stops working at once."""
        with self._database.transaction() as repos:
            if not SqlOidc(repos.connection).remove_client(client_id, now=now):
                return False
            repos.audit.append(_event("oidc.client_removed", client_id, now, actor))
        return True


def _check_introspected(store: SqlOidc, client: Client, *, known: tuple[str, ...]) -> None:
    """Every client newly named (not in ``known``) among those ``client`` may introspect
    the tokens of is registered (one removed since stays named, harmlessly)."""
    missing = [
        other for other in client.introspects if other not in known and store.client(other) is None
    ]
    if missing:
        raise RegistrationError(f"no client {', '.join(missing)} to introspect the tokens of")


def _event(event: str, client_id: str, now: datetime, actor: str, **detail: object) -> AuditEvent:
    return AuditEvent(
        event=event,
        outcome="success",
        at=now,
        ip=actor,
        detail={"client_id": client_id, **detail},
    )
