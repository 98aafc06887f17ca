"""JSON API for recovery: sign-in with a recovery code or an operator's one-time code, and
the account's recovery codes
(the same service calls as ``web/recovery_pages.py``; docs/flows/recovery.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.errors import ErrorCode
from sekisho.web import context
from sekisho.web.api import SessionInfo, signed_in
from sekisho.web.params import Email
from sekisho.web.refusals import ANY, JSON_BODY, SIGNED_IN, refusals

router = APIRouter(prefix="/api/v1", tags=["recovery"])
#: What :func:`sekisho.core.recovery_codes.canonical` accepts, in ASCII (the pages also
#: read full-width characters; an app normalises them, NFKC, before sending).
RECOVERY_CODE = r"^[ \t-]*(?:[0-9A-TV-Za-tv-z][ \t-]*){16}$"
JsonOnly = Depends(context.require_json)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RecoveryBody(_Strict):
    email: Email
    recovery_code: Annotated[
        str,
        Field(
            pattern=RECOVERY_CODE,
            max_length=64,
            description="A recovery code such as K7QM-3XVD-9RTA-HW2P: 16 ASCII letters and "
            "digits (no U), case, spaces and hyphens aside; I, L and O are read as 1, 1 and 0.",
        ),
    ]


class OperatorCodeBody(_Strict):
    email: Email
    code: Annotated[
        str,
        Field(
            pattern=RECOVERY_CODE,
            max_length=64,
            description="The one-time code an operator gave, in the recovery code's shape.",
        ),
    ]


class EmptyBody(_Strict):
    pass


class RecoveryCodes(BaseModel):
    """A new set, shown this once."""

    codes: list[str]


class RecoveryCodesStatus(BaseModel):
    generated_at: datetime | None
    remaining: int
    may_generate: bool
    hold_until: datetime | None


@router.post(
    "/signin/recovery",
    response_model=SessionInfo,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        ErrorCode.invalid_email,
        ErrorCode.recovery_failed,
        ErrorCode.rate_limited,
    ),
)
def sign_in_with_recovery_code(request: Request, body: RecoveryBody) -> Response:
    """Spend a recovery code: a restricted session, or 400 ``recovery_failed`` whatever
    was wrong (an unknown address, a wrong or used code: the same answer)."""
    issued = context.service(request).recovery.sign_in(
        raw_email=body.email,
        code=body.recovery_code,
        client=context.client(request),
        previous=context.session_token(request),
    )
    # The session's restriction is ``recovery``: it may only add a passkey (then make
    # new recovery codes, and sign out).
    return signed_in(request, issued)


@router.post(
    "/signin/recovery/operator",
    response_model=SessionInfo,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        ErrorCode.invalid_email,
        ErrorCode.invalid_code_format,
        ErrorCode.recovery_failed,
        ErrorCode.rate_limited,
    ),
)
def sign_in_with_operator_code(request: Request, body: OperatorCodeBody) -> Response:
    """Spend the one-time code two operators released (``/api/v1/admin/recoveries``): a
    session restricted to adding a passkey, like a recovery code's, or 400
    ``recovery_failed`` whatever was wrong (unknown address, wrong, used or expired code)."""
    issued = context.service(request).operator_code.sign_in(
        raw_email=body.email,
        code=body.code,
        client=context.client(request),
        previous=context.session_token(request),
    )
    return signed_in(request, issued)


@router.get(
    "/recovery-codes",
    response_model=RecoveryCodesStatus,
    responses=refusals(*ANY, *SIGNED_IN),
)
def recovery_codes_status(request: Request) -> RecoveryCodesStatus:
    status = context.service(request).recovery.status(context.require_any_session(request))
    return RecoveryCodesStatus(
        generated_at=status.codes.generated_at,
        remaining=status.codes.remaining,
        may_generate=status.may_generate,
        hold_until=status.hold_until,
    )


@router.post(
    "/recovery-codes",
    status_code=201,
    response_model=RecoveryCodes,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        *SIGNED_IN,
        ErrorCode.reauthentication_required,
        ErrorCode.recovery_hold,
        ErrorCode.rate_limited,
    ),
)
def generate_recovery_codes(request: Request, body: EmptyBody) -> Response:
    """Replace every recovery code with a new set of ten, after a fresh sign-in (with a
    passkey when the account has one), or inside a recovery once its passkey is added."""
    codes = context.service(request).recovery.generate(
        context.require_any_session(request), client=context.client(request)
    )
    return JSONResponse(RecoveryCodes(codes=codes).model_dump(mode="json"), status_code=201)
