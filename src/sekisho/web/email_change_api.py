"""JSON API for changing the account's email address (the same service calls as
``web/email_change_pages.py``; docs/flows/email-change.md)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.errors import ErrorCode
from sekisho.web import context
from sekisho.web.params import Code, Email, Token
from sekisho.web.refusals import JSON_BODY, SIGNED_IN, refusals

router = APIRouter(prefix="/api/v1", tags=["account"])
JsonOnly = Depends(context.require_json)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ChangeBody(_Strict):
    email: Email


class CodeBody(_Strict):
    code: Code


class LinkBody(_Strict):
    token: Token


class ChangeRequested(BaseModel):
    """The same answer whether or not the address already has an account."""

    status: str = "sent"


class EmailChanged(BaseModel):
    email: str


@router.post(
    "/account/email",
    status_code=202,
    response_model=ChangeRequested,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        *SIGNED_IN,
        ErrorCode.invalid_email,
        ErrorCode.email_unchanged,
        ErrorCode.reauthentication_required,
        ErrorCode.recovery_hold,
        ErrorCode.rate_limited,
    ),
)
def request_email_change(request: Request, body: ChangeBody) -> Response:
    """Email a one-time link and code to the new address (after a fresh sign-in, with a
    passkey when the account has one). The answer never says whether the address
    already has an account: such an address is told so by email instead."""
    context.service(request).email_change.request(
        context.require_session(request), raw_email=body.email, client=context.client(request)
    )
    return JSONResponse(ChangeRequested().model_dump(mode="json"), status_code=202)


@router.post(
    "/account/email/code",
    response_model=EmailChanged,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        *SIGNED_IN,
        ErrorCode.invalid_code_format,
        ErrorCode.code_incorrect,
        ErrorCode.email_change_invalid,
        ErrorCode.email_change_unavailable,
        ErrorCode.recovery_hold,
        ErrorCode.rate_limited,
    ),
)
def confirm_email_change_code(request: Request, body: CodeBody) -> EmailChanged:
    """Spend the emailed code: the address changes, the account's other sessions end,
    and the old address is told."""
    email = context.service(request).email_change.confirm_code(
        context.require_session(request), code=body.code, client=context.client(request)
    )
    return EmailChanged(email=email)


@router.post(
    "/account/email/link",
    response_model=EmailChanged,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        ErrorCode.email_change_invalid,
        ErrorCode.email_change_unavailable,
        ErrorCode.recovery_hold,
        ErrorCode.rate_limited,
    ),
)
def confirm_email_change_link(request: Request, body: LinkBody) -> EmailChanged:
    """Spend the emailed link's token (signed in or not: the link proves the mailbox)."""
    email = context.service(request).email_change.confirm_link(
        token=body.token, client=context.client(request)
    )
    return EmailChanged(email=email)
