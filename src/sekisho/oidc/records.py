"""The provider's stored objects, as plain immutable records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Client:
    """A registered relying party (RFC 7591 §2 metadata names where they exist)."""

    id: str
    name: str
    auth_method: str
    """``client_secret_basic``, ``client_secret_post``, ``private_key_jwt`` (RFC 7523,
    keys in ``jwks`` or at ``jwks_uri``) or ``none`` (public, PKCE only)."""
    application_type: str
    """``web`` or ``native``; only native clients get RFC 8252's loopback port rule."""
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    first_party: bool
    scopes: tuple[str, ...]
    id_token_lifetime: timedelta
    access_token_lifetime: timedelta
    created_at: datetime
    secret_digest: str | None = None
    secret_rotated_at: datetime | None = None
    require_par: bool = False
    """RFC 9126 §6 ``require_pushed_authorization_requests``: only pushed requests."""
    jwks: dict[str, Any] | None = None
    """The public keys of a ``private_key_jwt`` client (RFC 7517 JWK Set), inline."""
    id_token_alg: str = "ES256"  # noqa: S105 (an algorithm name, not a secret)
    """OIDC Registration §2 ``id_token_signed_response_alg``: ES256, RS256 or PS256."""
    backchannel_logout_uri: str | None = None
    """Where logout tokens are posted (OpenID Connect Back-Channel Logout 1.0 §2.2)."""
    backchannel_logout_session_required: bool = False
    subject_type: str = "public"
    """``public`` (the user id) or ``pairwise`` (OIDC Core §8.1, per sector)."""
    jwks_uri: str | None = None
    """Where a ``private_key_jwt`` client publishes its keys (OIDC Registration §2);
    exactly one of ``jwks`` and ``jwks_uri`` is set for such a client."""
    sector_identifier_uri: str | None = None
    """A pairwise client's sector (OIDC Core §8.1): a JSON array of its redirect URIs,
    checked when they are registered."""
    introspects: tuple[str, ...] = ()
    """The clients whose access tokens this client, a resource server, may introspect
    (RFC 7662 §2.2 and §4: the server decides who learns about which tokens); besides
    these, a client learns only about tokens issued to itself."""

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    @property
    def sector_identifier(self) -> str:
        """The host of the ``sector_identifier_uri`` when there is one, else of the
        redirect URIs (OIDC Core §8.1; registration makes a pairwise client without a
        sector identifier URI keep its redirect URIs on one host)."""
        if self.sector_identifier_uri:
            return urlsplit(self.sector_identifier_uri).hostname or ""
        return (urlsplit(self.redirect_uris[0]).hostname or "") if self.redirect_uris else ""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One signing key pair. Published in the JWKS from creation; signs from
    ``signs_from``; after ``retired_at`` it signs no more but stays published until
    ``published_until``, when every token it signed has expired."""

    kid: str
    alg: str
    public_jwk: dict[str, str]
    sealed_private_jwk: str
    created_at: datetime
    signs_from: datetime
    retired_at: datetime | None = None
    published_until: datetime | None = None

    def state(self, now: datetime) -> str:
        if self.retired_at is not None and self.retired_at <= now:
            return "retired"
        if self.signs_from > now:
            return "published"
        return "signing"


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated authorization request (OIDC Core §3.1.2.1), everything after it
    refers to: the client and redirect URI are known good, PKCE is S256."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    response_mode: str
    prompt: tuple[str, ...]
    max_age: int | None
    login_hint: str | None
    ui_locales: tuple[str, ...]
    acr_values: tuple[str, ...] = ()
    """The supported values of ``acr_values`` (OIDC Core §3.1.2.1), in the client's order."""
    authorization_details: tuple[dict[str, str | int], ...] = ()
    """RFC 9396: the one transaction to confirm (:mod:`sekisho.oidc.authorization_details`)."""


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """An authorization request waiting for sign-in or consent, stored server-side and
    named by a random id that only the browser's cookie carries."""

    request: AuthorizationRequest
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Grant:
    """What one authorization produced: the session facts frozen at that moment, the
    tokens it issued hang off it and end with it."""

    id: str
    client_id: str
    user_id: str
    session_id: str
    scope: tuple[str, ...]
    nonce: str | None
    auth_time: datetime
    amr: tuple[str, ...]
    acr: str
    created_at: datetime
    revoked_at: datetime | None = None
    confirmation_id: str | None = None
    """The confirmed RFC 9396 transaction this grant carries, if any."""


@dataclass(frozen=True, slots=True)
class SessionActivity:
    """What a grant needs of its Sekisho session, read in one statement: when it was
    last seen, its AAL, the idle limit it was issued with (a tier's), if any, and its
    absolute end (a refresh token never outlives it)."""

    last_seen_at: datetime
    aal: int
    idle_limit: timedelta | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RedeemedCode:
    """A code won by exactly one redemption, with what it was bound to."""

    grant_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    """A third-party client the person consented to (the account page's "Connected
    apps"), with the scopes they allowed and when."""

    client_id: str
    name: str
    scopes: tuple[str, ...]
    granted_at: datetime
