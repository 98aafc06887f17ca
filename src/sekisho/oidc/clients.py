"""Client registration and client authentication (RFC 6749 §2 and §2.3.1; OIDC
Dynamic Client Registration §2 names; RFC 8252 §7.3 and §8.3 for native apps).

Invariants: secrets are generated here, shown once and stored only as a keyed hash
(HMAC under the server key, bound to the client id), so checking one costs a hash, not
argon2; a ``private_key_jwt`` client has no secret, only its public JWK Set
(oidc/client_assertion.py); redirect URIs are compared exactly, and only a native client's loopback URI may
differ in its port (RFC 8252 §7.3).
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit

from authlib.oauth2.rfc6749.util import extract_basic_authorization

from sekisho.core.keys import Keyring
from sekisho.oidc import client_assertion
from sekisho.oidc.errors import OAuthError
from sekisho.oidc.records import Client
from sekisho.oidc.signing_keys import ALGORITHM, ALGORITHMS
from sekisho.oidc.subjects import SUBJECT_TYPES

SECRET_PURPOSE = "oidc-client-secret"  # noqa: S105 (a key label, not a secret)
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
APPLICATION_TYPES = ("web", "native")
SUPPORTED_SCOPES = ("openid", "email", "profile", "offline_access")
DEFAULT_ID_TOKEN_LIFETIME = timedelta(minutes=10)
DEFAULT_ACCESS_TOKEN_LIFETIME = timedelta(minutes=5)
MAX_TOKEN_LIFETIME = timedelta(hours=1)
LOOPBACK_HOSTS = ("127.0.0.1", "::1")


class RegistrationError(ValueError):
    """A client setting that cannot be accepted, said plainly for the operator."""


def is_loopback(host: str | None) -> bool:
    """``localhost`` or a loopback IP literal."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parsed_uri(uri: str) -> SplitResult | None:
    """``uri`` split into its parts, or None when it does not parse: a bracketed host
    that is not an IPv6 literal, or a port that is not a number from 0 to 65535
    (``urlsplit`` raises on the first, ``port`` on the second)."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (a malformed port raises)
    except ValueError:
        return None
    return parts


def _registrable_parts(uri: str, kind: str) -> SplitResult:
    """The parts of a URI the operator registers as a ``kind``, refused when it does not
    parse or holds characters no plain URI does."""
    if len(uri) > 2000 or any(char in uri for char in " \"'<>\\") or not uri.isprintable():
        raise RegistrationError(f"{uri!r}: not a plain URI")
    parts = parsed_uri(uri)
    if parts is None:
        raise RegistrationError(f"{uri}: not a valid {kind} (its host or port does not parse)")
    return parts


def check_https_uri(uri: str, what: str) -> str:
    """A URI Sekisho itself calls or fetches (``what`` names it in refusals): absolute,
    no fragment, no userinfo; https, or http on a loopback address (development; the
    fetcher refuses that too unless its setting allows it)."""
    parts = _registrable_parts(uri, what)
    if parts.fragment or "#" in uri:
        raise RegistrationError(f"{uri}: a {what} has no fragment")
    if parts.username is not None or parts.password is not None:
        raise RegistrationError(f"{uri}: a {what} has no user information")
    if (parts.scheme == "https" and parts.hostname) or (
        parts.scheme == "http" and is_loopback(parts.hostname)
    ):
        return uri
    raise RegistrationError(f"{uri}: use https (http only on a loopback address)")


def check_backchannel_logout_uri(uri: str) -> str:
    """A back-channel logout URI (Back-Channel Logout 1.0 §2.2)."""
    return check_https_uri(uri, "back-channel logout URI")


def check_subject_type(
    subject_type: str, redirect_uris: list[str], sector_identifier_uri: str | None = None
) -> str:
    """``public`` or ``pairwise``. A pairwise client's sector identifier is the host of
    its ``sector_identifier_uri`` (whose listing of the redirect URIs is checked by
    :func:`check_sector_listing` when it is fetched), or else the host of its redirect
    URIs, which must then share one (OIDC Core §8.1)."""
    if subject_type not in SUBJECT_TYPES:
        raise RegistrationError(f"subject type must be one of {', '.join(SUBJECT_TYPES)}")
    if sector_identifier_uri is not None:
        if subject_type != "pairwise":
            raise RegistrationError("a sector identifier URI is registered only with pairwise")
        check_https_uri(sector_identifier_uri, "sector identifier URI")
    elif subject_type == "pairwise":
        hosts = {urlsplit(uri).hostname for uri in redirect_uris}
        if len(hosts) != 1 or None in hosts:
            raise RegistrationError(
                "a pairwise client's redirect URIs must share one host (its sector"
                " identifier), or the client needs a sector identifier URI"
            )
    return subject_type


def check_sector_listing(document: object, redirect_uris: list[str] | tuple[str, ...]) -> None:
    """The document at a ``sector_identifier_uri`` is a JSON array of URIs holding every
    registered redirect URI (OIDC Core §8.1); raises :class:`RegistrationError`."""
    if not isinstance(document, list) or not all(isinstance(uri, str) for uri in document):
        raise RegistrationError("the sector identifier URI must serve a JSON array of URIs")
    missing = sorted(set(redirect_uris) - set(document))
    if missing:
        raise RegistrationError(
            f"the sector identifier URI does not list the redirect URI {', '.join(missing)}"
        )


def check_redirect_uri(uri: str, *, application_type: str) -> str:
    """A registrable redirect URI: absolute, no fragment (RFC 6749 §3.1.2), no userinfo;
    https, or http on a loopback host; or, for native apps, a private-use scheme with a
    dot (RFC 8252 §7.1)."""
    parts = _registrable_parts(uri, "redirect URI")
    if parts.fragment or "#" in uri:
        raise RegistrationError(f"{uri}: a redirect URI has no fragment")
    if parts.username is not None or parts.password is not None:
        raise RegistrationError(f"{uri}: a redirect URI has no user information")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return uri
    if application_type == "native" and "." in parts.scheme and parts.path:
        return uri
    raise RegistrationError(
        f"{uri}: use https (http only on a loopback address; private-use schemes for native apps)"
    )


def redirect_uri_matches(client: Client, candidate: str) -> bool:
    """Exact string comparison with a registered URI (RFC 9700 §4.1.3; ASVS 10.4.1).
    The one exception: a native client's loopback IP literal URI matches with any port
    (RFC 8252 §7.3); scheme, host, path and query must still be identical."""
    if candidate in client.redirect_uris:
        return True
    if client.application_type != "native":
        return False
    asked = parsed_uri(candidate)
    if asked is None or asked.scheme != "http" or asked.hostname not in LOOPBACK_HOSTS:
        return False
    if asked.fragment or asked.username is not None or asked.password is not None:
        return False
    for registered in client.redirect_uris:
        known = urlsplit(registered)
        if (
            known.scheme == "http"
            and known.hostname == asked.hostname
            and known.path == asked.path
            and known.query == asked.query
        ):
            return True
    return False


@dataclass(frozen=True, slots=True)
class NewClient:
    client: Client
    secret: str | None


def register(
    keys: Keyring,
    *,
    name: str,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str],
    auth_method: str,
    application_type: str,
    first_party: bool,
    scopes: list[str],
    id_token_lifetime: timedelta,
    access_token_lifetime: timedelta,
    now: datetime,
    client_id: str | None = None,
    jwks: object = None,
    require_par: bool = False,
    id_token_alg: str = ALGORITHM,
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool = False,
    subject_type: str = "public",
    jwks_uri: str | None = None,
    sector_identifier_uri: str | None = None,
    introspects: tuple[str, ...] = (),
) -> NewClient:
    """A new client and, for a secret-based method, its secret (returned once). The
    documents at ``jwks_uri`` and ``sector_identifier_uri`` are not fetched here
    (:class:`sekisho.oidc.client_admin.ClientAdmin` fetches the latter)."""
    registered_jwks, registered_jwks_uri = registrable_keys(auth_method, jwks, jwks_uri)
    identifier = client_id or new_client_id()
    secret = secrets.token_urlsafe(32) if auth_method.startswith("client_secret") else None
    client = Client(
        id=identifier,
        name=name,
        auth_method=auth_method,
        application_type=application_type,
        redirect_uris=tuple(redirect_uris),
        post_logout_redirect_uris=tuple(post_logout_redirect_uris),
        first_party=first_party,
        scopes=tuple(scopes),
        id_token_lifetime=id_token_lifetime,
        access_token_lifetime=access_token_lifetime,
        created_at=now,
        require_par=require_par,
        jwks=registered_jwks,
        id_token_alg=id_token_alg,
        backchannel_logout_uri=backchannel_logout_uri,
        backchannel_logout_session_required=backchannel_logout_session_required,
        subject_type=subject_type,
        jwks_uri=registered_jwks_uri,
        sector_identifier_uri=sector_identifier_uri,
        introspects=tuple(introspects),
    )
    checked_client = checked(client)
    if secret is not None:
        checked_client = replace(
            checked_client, secret_digest=secret_digest(keys, identifier, secret)
        )
    return NewClient(client=checked_client, secret=secret)


def checked(client: Client) -> Client:
    """The one check of a client's settings, when it is registered and whenever they
    change (``sekisho clients add`` and ``update``, the admin API's POST and PATCH):
    the client with its URIs and scopes as stored, or :class:`RegistrationError`. Keys
    are checked by :func:`registrable_keys`; that the clients it ``introspects`` exist
    is checked by :class:`sekisho.oidc.client_admin.ClientAdmin` in its transaction."""
    if client.auth_method not in AUTH_METHODS:
        raise RegistrationError(f"auth method must be one of {', '.join(AUTH_METHODS)}")
    if client.id_token_alg not in ALGORITHMS:
        raise RegistrationError(f"the ID token algorithm must be one of {', '.join(ALGORITHMS)}")
    if client.application_type not in APPLICATION_TYPES:
        raise RegistrationError("application type must be web or native")
    if not client.redirect_uris:
        raise RegistrationError("at least one redirect URI is needed")
    unknown = sorted(set(client.scopes) - set(SUPPORTED_SCOPES))
    if unknown or "openid" not in client.scopes:
        raise RegistrationError(
            f"scopes must include openid and come from {', '.join(SUPPORTED_SCOPES)}"
        )
    for lifetime in (client.id_token_lifetime, client.access_token_lifetime):
        if not timedelta(seconds=30) <= lifetime <= MAX_TOKEN_LIFETIME:
            raise RegistrationError("token lifetimes are between 30 seconds and 1 hour")
    check_client_id(client.id)
    if client.introspects and client.public:
        raise RegistrationError("a public client cannot introspect tokens")
    for other in client.introspects:
        check_client_id(other)
    return replace(
        client,
        redirect_uris=tuple(
            check_redirect_uri(uri, application_type=client.application_type)
            for uri in client.redirect_uris
        ),
        post_logout_redirect_uris=tuple(
            check_redirect_uri(uri, application_type=client.application_type)
            for uri in client.post_logout_redirect_uris
        ),
        scopes=tuple(dict.fromkeys(client.scopes)),
        backchannel_logout_uri=(
            check_backchannel_logout_uri(client.backchannel_logout_uri)
            if client.backchannel_logout_uri
            else None
        ),
        subject_type=check_subject_type(
            client.subject_type, list(client.redirect_uris), client.sector_identifier_uri
        ),
        introspects=tuple(
            other for other in dict.fromkeys(client.introspects) if other != client.id
        ),
    )


def check_client_id(identifier: str) -> str:
    """A client id: 1 to 64 printable ASCII characters, no space or colon, not
    beginning with ``-`` (the command line would read it as an option)."""
    if not (0 < len(identifier) <= 64 and identifier.isascii() and identifier.isprintable()):
        raise RegistrationError("a client id is 1 to 64 printable ASCII characters")
    if " " in identifier or ":" in identifier or identifier.startswith("-"):
        raise RegistrationError("a client id holds no space or colon and does not begin with -")
    return identifier


def registrable_keys(
    auth_method: str, jwks: object, jwks_uri: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The keys a ``private_key_jwt`` client needs, and no other client has: exactly
    one of an inline JWK Set and a ``jwks_uri`` (OIDC Registration §2)."""
    if auth_method != "private_key_jwt":
        if jwks is not None or jwks_uri is not None:
            raise RegistrationError("a JWKS or JWKS URI is registered only with private_key_jwt")
        return None, None
    if (jwks is None) == (jwks_uri is None):
        raise RegistrationError(
            "private_key_jwt needs the client's JWKS (its public keys) or its JWKS URI,"
            " exactly one of them"
        )
    if jwks_uri is not None:
        return None, check_https_uri(jwks_uri, "JWKS URI")
    try:
        return client_assertion.check_jwks(jwks), None
    except ValueError as error:
        raise RegistrationError(str(error)) from error


def new_client_id() -> str:
    """A generated client id: 144 random bits, URL-safe, never starting with ``-``, which
    the command line (``sekisho clients show|rotate-secret|remove ID``) would read as an
    option (one id in 64 did)."""
    while True:
        identifier = secrets.token_urlsafe(18)
        if not identifier.startswith("-"):
            return identifier


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _bound(client_id: str, secret: str) -> str:
    """The secret bound to its client, unambiguously (the id's length first)."""
    return f"{len(client_id)}:{client_id}:{secret}"


def secret_digest(keys: Keyring, client_id: str, secret: str) -> str:
    return keys.digest(SECRET_PURPOSE, _bound(client_id, secret))


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a token request presented to identify its client (RFC 6749 §2.3.1)."""

    client_id: str
    secret: str | None
    method: str
    assertion: str | None = None


def basic_credentials(authorization: str) -> tuple[str | None, str | None]:
    """The client id and secret of an ``Authorization: Basic`` header (RFC 6749 §2.3.1),
    each None when absent. Credentials are UTF-8 (RFC 7617 §2.1): bytes that do not
    decode give (None, None), a failed authentication like any other."""
    try:
        client_id, secret = extract_basic_authorization({"Authorization": authorization})
    except UnicodeDecodeError:
        return None, None
    return client_id, secret


def presented_credentials(
    headers: dict[str, str], form: dict[str, str], *, basic: bool
) -> Credentials:
    """Exactly one way of authenticating (RFC 6749 §2.3: a client MUST NOT use more
    than one method in a request). A client assertion (RFC 7523 §2.2) names its client
    by ``sub``; a ``client_id`` sent beside it must be the same."""
    posted_secret = form.get("client_secret")
    assertion_type = form.get("client_assertion_type")
    assertion = form.get("client_assertion")
    if assertion_type is not None or assertion is not None:
        if (
            basic
            or posted_secret is not None
            or assertion_type != client_assertion.ASSERTION_TYPE
            or not assertion
        ):
            raise OAuthError("invalid_client", "Client authentication failed.", status=401)
        subject = client_assertion.subject(assertion)
        if subject is None or form.get("client_id") not in (None, subject):
            raise OAuthError("invalid_client", "Client authentication failed.", status=401)
        return Credentials(subject, None, "private_key_jwt", assertion=assertion)
    if basic:
        client_id, secret = basic_credentials(headers.get("Authorization", ""))
        if not client_id or secret is None or posted_secret is not None:
            raise OAuthError("invalid_client", "Client authentication failed.", status=401)
        if form.get("client_id") not in (None, client_id):
            raise OAuthError("invalid_client", "Client authentication failed.", status=401)
        return Credentials(str(client_id), str(secret), "client_secret_basic")
    client_id = form.get("client_id")
    if not client_id:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    if posted_secret is not None:
        return Credentials(client_id, posted_secret, "client_secret_post")
    return Credentials(client_id, None, "none")


def authenticate(keys: Keyring, client: Client | None, credentials: Credentials) -> Client:
    """The registered client if it used its registered method with its current secret.
    A ``private_key_jwt`` client is not authenticated here: its assertion's signature is
    checked by :func:`client_assertion.verify` and its ``jti`` spent in the store."""
    if client is None or credentials.method != client.auth_method:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    if client.auth_method == "none":
        return client
    if client.auth_method == "private_key_jwt":
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    if (
        credentials.secret is None
        or client.secret_digest is None
        or not keys.matches(
            SECRET_PURPOSE, _bound(client.id, credentials.secret), client.secret_digest
        )
    ):
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    return client
