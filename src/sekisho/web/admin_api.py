"""The admin API (issue 9 "Clients", issue 10 "Tiers" and "Operators"): OIDC clients
and users' tiers and attributes, for operators' tools.

Authenticated only by an API key, ``Authorization: Bearer sk_...`` (RFC 6750 §2.1),
never by a session cookie. A missing, malformed, unknown or revoked key gets 401
``api_key_invalid`` with ``WWW-Authenticate: Bearer error="invalid_token"``; a key
without the scope an operation needs gets 403 ``insufficient_scope`` (RFC 6750 §3.1).
The operations call the same services as ``sekisho clients ...`` and ``sekisho users
set-tier`` / ``set-attribute``, so both keep the same checks and audit events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from sekisho.admin.api_keys import ApiKeyService
from sekisho.core.addresses import InvalidAddress, normalize_email
from sekisho.core.api_keys import ApiKey
from sekisho.errors import ErrorCode, SekishoError
from sekisho.oidc.client_admin import ClientAdmin, ClientExists, ClientSettings, describe
from sekisho.oidc.clients import RegistrationError
from sekisho.tier_service import NoAccount, TierChange, TierRefused
from sekisho.web import context
from sekisho.web.params import Email, whole_number
from sekisho.web.refusals import ANY, JSON_BODY, PATH_ID, refusals

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `sekisho api-keys create`, as a bearer token.",
)
JsonOnly = Depends(context.require_json)
KEY = (ErrorCode.api_key_invalid, ErrorCode.insufficient_scope)
ClientId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9._~-]{1,64}$", description="A client id (see /clients).")
]
#: Printable ASCII, and bounded so that the largest valid body stays well under
#: ``max_body_bytes`` (a URI beyond that is refused as 422, never 413).
Uri = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[!-~]+$")]
ClientIdValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9._~-]{1,64}$")]
INTROSPECTS = (
    "The clients whose access tokens this client, a resource server, may introspect"
    " (RFC 7662); it always may its own. Any other token is answered as unknown."
)
Lifetime = Annotated[
    int, Field(ge=30, le=3600, description="Seconds."), BeforeValidator(whole_number)
]
AttributeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
AttributeValue = Annotated[
    bool
    | int
    | Annotated[float, Field(allow_inf_nan=False)]
    | Annotated[str, Field(max_length=200)]
    | None,
    Field(description="A finite number, true, false or text; null removes the attribute."),
]


def api_keys(request: Request) -> ApiKeyService:
    service: ApiKeyService = request.app.state.api_keys
    return service


def client_admin(request: Request) -> ClientAdmin:
    admin: ClientAdmin = request.app.state.client_admin
    return admin


def _scopes(*needed: str, operator: bool = False) -> Callable[..., ApiKey]:
    """A dependency: the request's API key, if it holds every scope in ``needed`` (and,
    with ``operator``, names the operator it belongs to)."""

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        presented = credentials.credentials if credentials else None
        info = context.client(request)
        return api_keys(request).authenticate(
            presented, needed, ip=info.ip, user_agent=info.user_agent, operator=operator
        )

    return check


def _actor(key: ApiKey) -> str:
    return f"api-key:{key.id}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ClientOut(BaseModel):
    client_id: str
    name: str
    token_endpoint_auth_method: str
    application_type: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    first_party: bool
    scopes: list[str]
    id_token_lifetime_seconds: int
    access_token_lifetime_seconds: int
    created_at: datetime
    secret_rotated_at: datetime | None
    require_pushed_authorization_requests: bool
    id_token_signed_response_alg: str
    jwks: dict[str, Any] | None = Field(
        description="The public keys of a private_key_jwt client (a JWK Set); else null."
    )
    backchannel_logout_uri: str | None
    backchannel_logout_session_required: bool
    subject_type: str
    jwks_uri: str | None = Field(
        description="Where a private_key_jwt client publishes its keys, instead of jwks."
    )
    sector_identifier_uri: str | None = Field(
        description="A pairwise client's sector identifier URI (OIDC Core 8.1)."
    )
    introspects: list[str] = Field(description=INTROSPECTS)


class ClientCreated(ClientOut):
    client_secret: str | None = Field(
        description="Shown only in this answer; null for a public client."
    )


class ClientSecret(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown only in this answer.")


class ClientBody(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    redirect_uris: Annotated[list[Uri], Field(min_length=1, max_length=10)]
    post_logout_redirect_uris: Annotated[list[Uri], Field(max_length=10)] = []
    token_endpoint_auth_method: Literal[
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"
    ] = "client_secret_basic"  # noqa: S105 (a method name, not a secret)
    application_type: Literal["web", "native"] = "web"
    first_party: bool = False
    scopes: Annotated[
        list[Literal["openid", "email", "profile", "offline_access"]],
        Field(min_length=1, max_length=4),
    ] = ["openid", "email"]
    id_token_lifetime_seconds: Lifetime = 600
    access_token_lifetime_seconds: Lifetime = 300
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._~-]{1,64}$")] | None = None
    jwks: dict[str, Any] | None = Field(
        default=None,
        description="private_key_jwt only, exactly one of jwks and jwks_uri: the client's"
        " public keys, a JWK Set of 1 to 10 EC P-256 or RSA (2048 bits or more) keys"
        " (RFC 7523).",
    )
    jwks_uri: Uri | None = Field(
        default=None,
        description="private_key_jwt only, exactly one of jwks and jwks_uri: an https URI"
        " where the client publishes that JWK Set (fetched when it authenticates, cached,"
        " refetched when an assertion names an unknown kid).",
    )
    require_pushed_authorization_requests: bool = Field(
        default=False, description="Accept only pushed authorization requests (RFC 9126 §6)."
    )
    id_token_signed_response_alg: Literal["ES256", "RS256", "PS256"] = "ES256"  # noqa: S105 (an algorithm name, not a secret)
    backchannel_logout_uri: Uri | None = Field(
        default=None,
        description="Where Sekisho posts logout tokens when a session ends "
        "(OpenID Connect Back-Channel Logout 1.0).",
    )
    backchannel_logout_session_required: bool = False
    subject_type: Literal["public", "pairwise"] = Field(
        default="public",
        description="pairwise: a per-sector sub (OIDC Core 8.1); the redirect URIs must "
        "share one host, unless sector_identifier_uri is given.",
    )
    sector_identifier_uri: Uri | None = Field(
        default=None,
        description="pairwise only: an https URI serving a JSON array that lists every "
        "redirect URI (fetched and checked now); its host becomes the sector.",
    )
    introspects: Annotated[list[ClientIdValue], Field(max_length=20)] = Field(
        default=[], description=INTROSPECTS
    )


class ClientPatch(_Strict):
    """The settings to change; what is absent stays. Not the subject type (every sub
    would change) nor the id, auth method, keys or application type."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    redirect_uris: Annotated[list[Uri], Field(min_length=1, max_length=10)] | None = None
    post_logout_redirect_uris: Annotated[list[Uri], Field(max_length=10)] | None = None
    first_party: bool | None = None
    scopes: (
        Annotated[
            list[Literal["openid", "email", "profile", "offline_access"]],
            Field(min_length=1, max_length=4),
        ]
        | None
    ) = None
    id_token_lifetime_seconds: Lifetime | None = None
    access_token_lifetime_seconds: Lifetime | None = None
    require_pushed_authorization_requests: bool | None = None
    id_token_signed_response_alg: Literal["ES256", "RS256", "PS256"] | None = None
    backchannel_logout_uri: Uri | None = Field(
        default=None, description="null removes it (no back-channel logout)."
    )
    backchannel_logout_session_required: bool | None = None
    introspects: Annotated[list[ClientIdValue], Field(max_length=20)] | None = Field(
        default=None, description=INTROSPECTS
    )

    def changes(self) -> dict[str, object]:
        """The :class:`Client` fields to change (``ClientAdmin.update``)."""
        named = {
            "name": self.name,
            "redirect_uris": _tupled(self.redirect_uris),
            "post_logout_redirect_uris": _tupled(self.post_logout_redirect_uris),
            "first_party": self.first_party,
            "scopes": _tupled(self.scopes),
            "id_token_lifetime": _lifetime(self.id_token_lifetime_seconds),
            "access_token_lifetime": _lifetime(self.access_token_lifetime_seconds),
            "require_par": self.require_pushed_authorization_requests,
            "id_token_alg": self.id_token_signed_response_alg,
            "backchannel_logout_session_required": self.backchannel_logout_session_required,
            "introspects": _tupled(self.introspects),
        }
        changes: dict[str, object] = {
            field: value for field, value in named.items() if value is not None
        }
        if "backchannel_logout_uri" in self.model_fields_set:
            changes["backchannel_logout_uri"] = self.backchannel_logout_uri
        return changes


def _tupled(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _lifetime(seconds: int | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


NOTICE_LOCALE = (
    "The language of the email that tells the account holder, if the account has no"
    " sign-in on record; otherwise the email is in the language of its last sign-in."
)


class UserBody(_Strict):
    email: Email


class NoticeLocale(UserBody):
    locale: Literal["en", "ja"] = Field("en", description=NOTICE_LOCALE)


class TierBody(NoticeLocale):
    tier: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        description="A tier the policy declares; null lets the policy's rules decide."
    )


class AttributeBody(NoticeLocale):
    name: AttributeName
    value: AttributeValue


class UserTierOut(BaseModel):
    email: str
    tier: str = Field(description="The tier in force: the operator's, or the rules'.")
    set_tier: str | None = Field(description="The operator's choice; null: the rules decide.")
    attributes: dict[str, bool | int | float | str]


class TierChangeOut(BaseModel):
    email: str
    before: str
    after: str
    ways_in: list[str] = Field(description="The sign-in methods the tier allows this account.")
    restricted_next: bool = Field(
        description="True when the next sign-in only allows enrolling what the tier needs."
    )


def _client_out(client_fields: dict[str, object]) -> ClientOut:
    return ClientOut.model_validate(client_fields)


def _change_out(change: TierChange) -> TierChangeOut:
    return TierChangeOut(
        email=change.email,
        before=change.before,
        after=change.after,
        ways_in=list(change.ways_in),
        restricted_next=change.restricted_next,
    )


def _address(raw: str) -> str:
    try:
        return normalize_email(raw)
    except InvalidAddress as error:
        raise SekishoError(ErrorCode.invalid_email) from error


def _explained(code: ErrorCode, error: Exception) -> SekishoError:
    return SekishoError(code, detail={"explanation": str(error)})


@router.get("/clients", responses=refusals(*ANY, *KEY))
def list_clients(
    request: Request, _key: Annotated[ApiKey, Depends(_scopes("clients:read"))]
) -> list[ClientOut]:
    """Every OpenID Connect client (never a secret). Scope `clients:read`."""
    return [_client_out(describe(client)) for client in client_admin(request).all()]


@router.get("/clients/{client_id}", responses=refusals(*ANY, *KEY, *PATH_ID, ErrorCode.not_found))
def show_client(
    request: Request,
    client_id: ClientId,
    _key: Annotated[ApiKey, Depends(_scopes("clients:read"))],
) -> ClientOut:
    """One client's settings (never its secret). Scope `clients:read`."""
    client = client_admin(request).one(client_id)
    if client is None:
        raise SekishoError(ErrorCode.not_found)
    return _client_out(describe(client))


@router.post(
    "/clients",
    status_code=201,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY, *KEY, ErrorCode.invalid_client_metadata, ErrorCode.client_exists
    ),
)
def create_client(
    request: Request,
    body: ClientBody,
    key: Annotated[ApiKey, Depends(_scopes("clients:write"))],
) -> ClientCreated:
    """Register a client, as `sekisho clients add` does; its secret is in this answer
    only. Scope `clients:write`."""
    settings = ClientSettings(
        name=body.name,
        redirect_uris=body.redirect_uris,
        post_logout_redirect_uris=body.post_logout_redirect_uris,
        auth_method=body.token_endpoint_auth_method,
        application_type=body.application_type,
        first_party=body.first_party,
        scopes=tuple(body.scopes),
        id_token_lifetime=timedelta(seconds=body.id_token_lifetime_seconds),
        access_token_lifetime=timedelta(seconds=body.access_token_lifetime_seconds),
        client_id=body.client_id,
        jwks=body.jwks,
        jwks_uri=body.jwks_uri,
        require_par=body.require_pushed_authorization_requests,
        id_token_alg=body.id_token_signed_response_alg,
        backchannel_logout_uri=body.backchannel_logout_uri,
        backchannel_logout_session_required=body.backchannel_logout_session_required,
        subject_type=body.subject_type,
        sector_identifier_uri=body.sector_identifier_uri,
        introspects=tuple(body.introspects),
    )
    sekisho = context.service(request)
    try:
        made = client_admin(request).add(settings, now=sekisho.clock(), actor=_actor(key))
    except ClientExists as error:
        raise _explained(ErrorCode.client_exists, error) from error
    except RegistrationError as error:
        raise _explained(ErrorCode.invalid_client_metadata, error) from error
    return ClientCreated.model_validate({**describe(made.client), "client_secret": made.secret})


@router.post(
    "/clients/{client_id}/secret",
    responses=refusals(*ANY, *KEY, *PATH_ID, ErrorCode.not_found),
)
def rotate_client_secret(
    request: Request,
    client_id: ClientId,
    key: Annotated[ApiKey, Depends(_scopes("clients:write"))],
) -> ClientSecret:
    """A new secret for a confidential client; the old one stops working at once. The
    secret is in this answer only. Scope `clients:write`."""
    now = context.service(request).clock()
    secret = client_admin(request).rotate_secret(client_id, now=now, actor=_actor(key))
    if secret is None:
        raise SekishoError(ErrorCode.not_found)
    return ClientSecret(client_id=client_id, client_secret=secret)


class JwksBody(_Strict):
    jwks: dict[str, Any] | None = Field(
        default=None,
        description="Exactly one of jwks and jwks_uri: the client's new public keys, a JWK"
        " Set of 1 to 10 EC P-256 or RSA (2048 bits or more) keys.",
    )
    jwks_uri: Uri | None = Field(
        default=None,
        description="Exactly one of jwks and jwks_uri: an https URI where the client"
        " publishes its JWK Set from now on.",
    )


@router.put(
    "/clients/{client_id}/jwks",
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY, *KEY, *PATH_ID, ErrorCode.invalid_client_metadata, ErrorCode.not_found
    ),
)
def replace_client_jwks(
    request: Request,
    client_id: ClientId,
    body: JwksBody,
    key: Annotated[ApiKey, Depends(_scopes("clients:write"))],
) -> ClientOut:
    """Replace a `private_key_jwt` client's public keys, inline or by URI, as `sekisho
    clients set-jwks` does (keep the old key in the set until the client signs with the
    new one). Scope `clients:write`."""
    admin = client_admin(request)
    now = context.service(request).clock()
    try:
        replaced = admin.set_jwks(
            client_id, jwks=body.jwks, jwks_uri=body.jwks_uri, now=now, actor=_actor(key)
        )
    except RegistrationError as error:
        raise _explained(ErrorCode.invalid_client_metadata, error) from error
    client = admin.one(client_id) if replaced else None
    if client is None:
        raise SekishoError(ErrorCode.not_found)
    return _client_out(describe(client))


@router.patch(
    "/clients/{client_id}",
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY, *KEY, *PATH_ID, ErrorCode.invalid_client_metadata, ErrorCode.not_found
    ),
)
def update_client(
    request: Request,
    client_id: ClientId,
    body: ClientPatch,
    key: Annotated[ApiKey, Depends(_scopes("clients:write"))],
) -> ClientOut:
    """Change a client's settings, as `sekisho clients update` does, checked as at
    registration; what the body does not name stays. Scope `clients:write`."""
    now = context.service(request).clock()
    try:
        updated = client_admin(request).update(
            client_id, body.changes(), now=now, actor=_actor(key)
        )
    except RegistrationError as error:
        raise _explained(ErrorCode.invalid_client_metadata, error) from error
    if updated is None:
        raise SekishoError(ErrorCode.not_found)
    return _client_out(describe(updated))


@router.delete(
    "/clients/{client_id}",
    status_code=204,
    response_class=Response,
    responses=refusals(*ANY, *KEY, *PATH_ID, ErrorCode.not_found),
)
def delete_client(
    request: Request,
    client_id: ClientId,
    key: Annotated[ApiKey, Depends(_scopes("clients:write"))],
) -> Response:
    """Remove a client; every token it holds stops working at once. Scope `clients:write`."""
    now = context.service(request).clock()
    if not client_admin(request).remove(client_id, now=now, actor=_actor(key)):
        raise SekishoError(ErrorCode.not_found)
    return Response(status_code=204)


@router.post(
    "/users/lookup",
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, *KEY, ErrorCode.invalid_email, ErrorCode.not_found),
)
def show_user(
    request: Request,
    body: UserBody,
    _key: Annotated[ApiKey, Depends(_scopes("users:read"))],
) -> UserTierOut:
    """An account's tier and attributes (404 `not_found` when there is no account: a
    key with `users:read` may know that). Scope `users:read`."""
    try:
        shown = context.service(request).tiers.show(_address(body.email))
    except NoAccount as error:
        raise SekishoError(ErrorCode.not_found) from error
    return UserTierOut(
        email=shown.email, tier=shown.tier, set_tier=shown.set_tier, attributes=shown.attributes
    )


def _user_change(change: Callable[[], TierChange]) -> TierChangeOut:
    try:
        return _change_out(change())
    except NoAccount as error:
        raise SekishoError(ErrorCode.not_found) from error
    except TierRefused as error:
        raise _explained(ErrorCode.tier_refused, error) from error


@router.post(
    "/users/tier",
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY, *KEY, ErrorCode.invalid_email, ErrorCode.not_found, ErrorCode.tier_refused
    ),
)
def set_user_tier(
    request: Request,
    body: TierBody,
    key: Annotated[ApiKey, Depends(_scopes("users:read", "users:write"))],
) -> TierChangeOut:
    """Put an account in a tier, as `sekisho users set-tier` does: refused with 409
    `tier_refused` when it would leave the account no way in. Scopes `users:write` and
    `users:read` (the answer shows whether the account exists)."""
    tiers = context.service(request).tiers
    return _user_change(
        lambda: tiers.set_tier(
            _address(body.email), body.tier, actor=_actor(key), locale=body.locale
        )
    )


@router.post(
    "/users/attribute",
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY, *KEY, ErrorCode.invalid_email, ErrorCode.not_found, ErrorCode.tier_refused
    ),
)
def set_user_attribute(
    request: Request,
    body: AttributeBody,
    key: Annotated[ApiKey, Depends(_scopes("users:read", "users:write"))],
) -> TierChangeOut:
    """Set (or, with null, remove) an attribute the tier rules read, as `sekisho users
    set-attribute` does; the derived tier follows, with the same refusal. Scopes
    `users:write` and `users:read`."""
    tiers = context.service(request).tiers
    return _user_change(
        lambda: tiers.set_attribute(
            _address(body.email), body.name, body.value, actor=_actor(key), locale=body.locale
        ),
    )
