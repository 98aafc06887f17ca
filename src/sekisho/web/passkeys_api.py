"""JSON API for passkeys: sign-in ceremonies and management (the pages' JavaScript uses
the same endpoints). Credentials travel as the browser's ``toJSON()`` output."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from sekisho.core.records import Passkey
from sekisho.errors import ErrorCode
from sekisho.methods.passkey.aaguids import model_name
from sekisho.methods.passkey.ceremony import StartedCeremony
from sekisho.web import context
from sekisho.web.answers import json_answer
from sekisho.web.api import SessionInfo, signed_in
from sekisho.web.lean_route import LeanRoute
from sekisho.web.params import BodyFlowId, Email, PasskeyId
from sekisho.web.refusals import ANY, CROSS_SITE, JSON_BODY, PATH_ID, SIGNED_IN, refusals

router = APIRouter(prefix="/api/v1", tags=["passkeys"], route_class=LeanRoute)
JsonOnly = Depends(context.require_json)
Credential = Annotated[
    dict[str, Any], Field(json_schema_extra={"description": "PublicKeyCredential.toJSON()"})
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SignInOptionsBody(_Strict):
    email: Email | None = None


class CeremonyBody(_Strict):
    flow_id: BodyFlowId
    credential: Credential


class RegistrationBody(CeremonyBody):
    name: Annotated[str, Field(max_length=200)] | None = None


class RenameBody(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]


class EmptyBody(_Strict):
    pass


class PasskeyItem(BaseModel):
    id: str
    name: str
    model: str | None
    synced: bool
    backed_up: bool
    user_verified: bool
    created_at: datetime
    last_used_at: datetime | None


def passkey_item(passkey: Passkey) -> PasskeyItem:
    return PasskeyItem(
        id=passkey.id,
        name=passkey.name,
        model=model_name(passkey.aaguid),
        synced=passkey.backup_eligible,
        backed_up=passkey.backup_state,
        user_verified=passkey.user_verified,
        created_at=passkey.created_at,
        last_used_at=passkey.last_used_at,
    )


class CeremonyOptions(BaseModel):
    """``publicKey`` is PublicKeyCredentialCreationOptionsJSON or ...RequestOptionsJSON."""

    flow_id: str
    publicKey: dict[str, Any]


#: What a ceremony's answer can be refused with.
_CEREMONY_REFUSALS = (
    ErrorCode.passkey_invalid,
    ErrorCode.passkey_rejected,
    ErrorCode.invalid_or_expired,
    ErrorCode.rate_limited,
)


def ceremony_options(started: StartedCeremony) -> Response:
    """``{"flow_id", "publicKey"}``: publicKey is PublicKeyCredential*OptionsJSON."""
    return json_answer({"flow_id": started.flow_id, "publicKey": started.options})


@router.post(
    "/signin/passkey/options",
    response_model=CeremonyOptions,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, ErrorCode.invalid_email, ErrorCode.rate_limited),
)
def sign_in_options(request: Request, body: SignInOptionsBody) -> Response:
    """Start a passkey sign-in: usernameless/autofill without ``email``, email-first
    with it. Sets the browser-binding cookie; the answer never says whether the
    address has an account or passkeys."""
    binding = context.binding_for_request(request)
    started = context.service(request).passkeys.begin_sign_in(
        raw_email=body.email, binding=binding, client=context.client(request)
    )
    response = ceremony_options(started)
    context.set_binding(request, response, binding)
    return response


@router.post(
    "/signin/passkey/verify",
    response_model=SessionInfo,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, *_CEREMONY_REFUSALS, ErrorCode.passkey_unknown),
)
def sign_in_verify(request: Request, body: CeremonyBody) -> Response:
    issued = context.service(request).passkeys.finish_sign_in(
        flow_id=body.flow_id,
        credential=body.credential,
        binding=context.binding(request),
        client=context.client(request),
        previous=context.session_token(request),
    )
    return signed_in(request, issued)


@router.post(
    "/passkeys/registration/options",
    response_model=CeremonyOptions,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        *SIGNED_IN,
        ErrorCode.reauthentication_required,
        ErrorCode.passkey_limit_reached,
        ErrorCode.rate_limited,
    ),
)
def registration_options(request: Request, body: EmptyBody) -> Response:
    """Start adding a passkey; needs a recent sign-in at the account's highest level
    (403 ``reauthentication_required`` otherwise) and room for one more (409
    ``passkey_limit_reached`` once the account holds eight)."""
    binding = context.binding_for_request(request)
    started = context.service(request).passkeys.begin_registration(
        context.require_any_session(request), binding=binding, client=context.client(request)
    )
    response = ceremony_options(started)
    context.set_binding(request, response, binding)
    return response


@router.post(
    "/passkeys/registration/verify",
    status_code=201,
    response_model=PasskeyItem,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        *SIGNED_IN,
        *_CEREMONY_REFUSALS,
        ErrorCode.reauthentication_required,
        ErrorCode.passkey_not_allowed,
        ErrorCode.passkey_already_registered,
        ErrorCode.passkey_limit_reached,
    ),
)
def registration_verify(request: Request, body: RegistrationBody) -> Response:
    passkey = context.service(request).passkeys.finish_registration(
        context.require_any_session(request),
        flow_id=body.flow_id,
        credential=body.credential,
        name=body.name,
        binding=context.binding(request),
        locale=context.locale(request),
        client=context.client(request),
    )
    return json_answer(passkey_item(passkey), status_code=201)


@router.get("/passkeys", response_model=list[PasskeyItem], responses=refusals(*ANY, *SIGNED_IN))
def list_passkeys(request: Request) -> list[PasskeyItem]:
    return [
        passkey_item(p)
        for p in context.service(request).passkeys.passkeys_of(context.require_session(request))
    ]


@router.patch(
    "/passkeys/{passkey_id}",
    status_code=204,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, *SIGNED_IN, *PATH_ID, ErrorCode.not_found),
)
def rename_passkey(request: Request, passkey_id: PasskeyId, body: RenameBody) -> Response:
    context.service(request).passkeys.rename(
        context.require_session(request), passkey_id, body.name, context.client(request)
    )
    return Response(status_code=204)


@router.delete(
    "/passkeys/{passkey_id}",
    status_code=204,
    responses=refusals(
        *ANY,
        *CROSS_SITE,
        *SIGNED_IN,
        *PATH_ID,
        ErrorCode.reauthentication_required,
        ErrorCode.recovery_hold,
        ErrorCode.not_found,
        ErrorCode.last_way_in,
    ),
)
def delete_passkey(request: Request, passkey_id: PasskeyId) -> Response:
    context.check_origin(request)
    context.service(request).passkeys.remove(
        context.require_session(request),
        passkey_id,
        locale=context.locale(request),
        client=context.client(request),
    )
    return Response(status_code=204)
