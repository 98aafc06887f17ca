"""The transaction confirmation API (issue 10; docs/flows/step-up.md).

- ``POST /api/v1/confirmations``: an application, with the person's access token
  (``Authorization: Bearer``), asks for a confirmation; 401 with RFC 9470's
  ``insufficient_user_authentication`` challenge when the session is too weak or old.
- ``POST /api/v1/confirmations/{id}/options`` and ``.../verify``: the confirmation
  page's passkey ceremony (the signed-in person's session, JSON, same origin).
- ``GET /api/v1/confirmations/{id}`` and ``POST /api/v1/confirmations/{id}/redeem``:
  the application, authenticated with HTTP Basic as its confidential client, collects
  the signed confirmation and spends it once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from sekisho.confirmation_service import ConfirmationService
from sekisho.errors import ErrorCode
from sekisho.policy.confirmations import Confirmation
from sekisho.web import context
from sekisho.web.answers import json_answer
from sekisho.web.lean_route import LeanRoute
from sekisho.web.params import IDENTIFIER, BodyFlowId
from sekisho.web.passkeys_api import CeremonyOptions, Credential, EmptyBody, ceremony_options
from sekisho.web.refusals import ANY, JSON_BODY, PATH_ID, SIGNED_IN, refusals

router = APIRouter(prefix="/api/v1/confirmations", tags=["confirmations"], route_class=LeanRoute)
JsonOnly = Depends(context.require_json)


def _count_ip(request: Request) -> None:
    """The applications' side of this API (ask, collect, redeem) is counted per client
    IP under ``limit_token_per_ip``, like the other endpoints their back-ends call."""
    limits = context.service(request).limits
    limits.hit(limits.token_per_ip, context.client(request).ip)


CountedIp = Depends(_count_ip)
ConfirmationId = Annotated[
    str, Path(pattern=IDENTIFIER, description="A confirmation id (the confirmation's jti).")
]
DetailValue = Annotated[str, Field(max_length=200)] | int


def service(request: Request) -> ConfirmationService:
    confirmations: ConfirmationService = request.app.state["confirmations"]
    return confirmations


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateBody(_Strict):
    action: Annotated[str, Field(min_length=1, max_length=32)]
    details: Annotated[dict[str, DetailValue], Field(max_length=32)]
    return_uri: Annotated[str, Field(max_length=2000)] | None = None


class RedeemBody(_Strict):
    action: Annotated[str, Field(min_length=1, max_length=32)]
    details: Annotated[dict[str, DetailValue], Field(max_length=32)]


class CeremonyBody(_Strict):
    flow_id: BodyFlowId
    credential: Credential


class Created(BaseModel):
    id: str
    url: str
    action: str
    details_hash: str
    expires_at: datetime


class Collected(BaseModel):
    id: str
    status: str
    action: str
    details: dict[str, Any]
    details_hash: str
    expires_at: datetime
    confirmation: str | None = Field(
        description="The signed confirmation (a txn-confirmation+jwt) once confirmed."
    )


class Redeemed(BaseModel):
    id: str
    sub: str
    action: str
    details_hash: str
    acr: str | None
    amr: list[str]
    confirmed_at: datetime | None


class Verified(BaseModel):
    redirect_to: str | None


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip()[:8192] if scheme.lower() == "bearer" else ""


_BEARER_REFUSALS = (ErrorCode.access_token_invalid, ErrorCode.insufficient_user_authentication)
_CLIENT_REFUSALS = (ErrorCode.client_authentication_failed, ErrorCode.confirmation_unknown)


@router.post(
    "",
    status_code=201,
    response_model=Created,
    dependencies=[CountedIp, JsonOnly],
    responses=refusals(
        *JSON_BODY,
        *_BEARER_REFUSALS,
        ErrorCode.rate_limited,
        ErrorCode.unknown_action,
        ErrorCode.invalid_details,
        ErrorCode.invalid_return_uri,
        ErrorCode.recovery_hold,
    ),
)
def create(request: Request, body: CreateBody) -> Response:
    """Ask the person to confirm ``action`` with ``details``; send their browser to
    ``url``. ``return_uri`` (one of the client's redirect URIs) gets
    ``?confirmation=ID`` afterwards."""
    confirmation = service(request).create(
        _bearer(request),
        action_name=body.action,
        details=body.details,
        return_uri=body.return_uri,
        client_info=context.client(request),
    )
    created = Created(
        id=confirmation.id,
        url=service(request).url(confirmation.id),
        action=confirmation.action,
        details_hash=confirmation.details_hash,
        expires_at=confirmation.expires_at,
    )
    return json_answer(created, status_code=201)


@router.get(
    "/{confirmation_id}",
    response_model=Collected,
    dependencies=[CountedIp],
    responses=refusals(*ANY, *PATH_ID, *_CLIENT_REFUSALS, ErrorCode.rate_limited),
)
def collect(request: Request, confirmation_id: ConfirmationId) -> Response:
    """The confirmation's status and, once confirmed, the signed confirmation."""
    confirmation, status = service(request).collect(
        confirmation_id, request.headers.get("authorization", "")
    )
    return json_answer(
        Collected(
            id=confirmation.id,
            status=status,
            action=confirmation.action,
            details=confirmation.details,
            details_hash=confirmation.details_hash,
            expires_at=confirmation.expires_at,
            confirmation=confirmation.token if status == "confirmed" else None,
        )
    )


@router.post(
    "/{confirmation_id}/redeem",
    response_model=Redeemed,
    dependencies=[CountedIp, JsonOnly],
    responses=refusals(
        *JSON_BODY,
        *PATH_ID,
        *_CLIENT_REFUSALS,
        ErrorCode.rate_limited,
        ErrorCode.confirmation_pending,
        ErrorCode.confirmation_used,
        ErrorCode.confirmation_expired,
        ErrorCode.confirmation_mismatch,
    ),
)
def redeem(request: Request, confirmation_id: ConfirmationId, body: RedeemBody) -> Response:
    """Spend the confirmation once, for the action and details about to be executed
    (another action or other details spend it too, and are refused)."""
    spent = service(request).redeem(
        confirmation_id,
        request.headers.get("authorization", ""),
        action_name=body.action,
        details=body.details,
        client_info=context.client(request),
    )
    return json_answer(_redeemed(spent))


def _redeemed(spent: Confirmation) -> Redeemed:
    return Redeemed(
        id=spent.id,
        sub=spent.user_id,
        action=spent.action,
        details_hash=spent.details_hash,
        acr=spent.acr,
        amr=list(spent.amr),
        confirmed_at=spent.confirmed_at,
    )


_PAGE_REFUSALS = (
    *JSON_BODY,
    *SIGNED_IN,
    *PATH_ID,
    ErrorCode.confirmation_unknown,
    ErrorCode.confirmation_used,
    ErrorCode.confirmation_expired,
    ErrorCode.rate_limited,
)


@router.post(
    "/{confirmation_id}/options",
    response_model=CeremonyOptions,
    dependencies=[JsonOnly],
    responses=refusals(*_PAGE_REFUSALS, ErrorCode.confirmation_passkey_required),
)
def options(request: Request, confirmation_id: ConfirmationId, body: EmptyBody) -> Response:
    """Start the passkey ceremony that confirms (the signed-in person's own)."""
    binding = context.binding_for_request(request)
    started = service(request).begin(
        confirmation_id,
        context.session_lookup(request),
        binding=binding,
        client_info=context.client(request),
    )
    response = ceremony_options(started)
    context.set_binding(request, response, binding)
    return response


@router.post(
    "/{confirmation_id}/verify",
    response_model=Verified,
    dependencies=[JsonOnly],
    responses=refusals(
        *_PAGE_REFUSALS,
        ErrorCode.passkey_invalid,
        ErrorCode.passkey_rejected,
        ErrorCode.invalid_or_expired,
    ),
)
def verify(request: Request, confirmation_id: ConfirmationId, body: CeremonyBody) -> Response:
    confirmation = service(request).finish(
        confirmation_id,
        context.session_lookup(request),
        flow_id=body.flow_id,
        credential=body.credential,
        binding=context.binding(request),
        client_info=context.client(request),
    )
    return json_answer(Verified(redirect_to=return_url(confirmation)))


def return_url(confirmation: Confirmation) -> str | None:
    """The application's return URI with ``confirmation=ID`` added to its query."""
    if confirmation.return_uri is None:
        return None
    separator = "&" if "?" in confirmation.return_uri else "?"
    return f"{confirmation.return_uri}{separator}confirmation={confirmation.id}"
