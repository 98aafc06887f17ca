"""Operator-assisted recovery in the admin API (issue 10 "Recovery that keeps the tier"
and "Operators"): open a case, approve it as another operator, cancel it, list cases. The same
service as ``sekisho recovery open|approve|list``; docs/flows/recovery.md.

Authenticated by API key only (``web/admin_api.py``). A key that opens, approves or
cancels names the operator it belongs to (``sekisho api-keys create --operator``, an
address in ``admin_emails``); a key without one is refused with 403
``api_key_no_operator``. The case records that person, so the approver is compared with
the opener as a person whatever channel either used (:mod:`sekisho.core.operators`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.core.api_keys import ApiKey
from sekisho.core.operators import Actor
from sekisho.core.records import OperatorRecovery
from sekisho.errors import ErrorCode, SekishoError
from sekisho.operator_recovery_service import (
    CASE_ID_PATTERN,
    REASON_MAX,
    CaseRefused,
    NoAccount,
    NotAnOperator,
    OperatorRecoveryService,
)
from sekisho.web import context
from sekisho.web.admin_api import (
    KEY,
    NOTICE_LOCALE,
    JsonOnly,
    UserBody,
    _actor,
    _scopes,
    _Strict,
)
from sekisho.web.refusals import ANY, JSON_BODY, PATH_ID, refusals

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
CaseId = Annotated[str, Path(pattern=CASE_ID_PATTERN, description="A recovery case id.")]
Locale = Literal["en", "ja"]
#: A key that names no operator, or one no longer in ``admin_emails``.
OPERATOR = (ErrorCode.api_key_no_operator, ErrorCode.not_an_operator)


class OpenBody(UserBody):
    reason: Annotated[str, Field(min_length=1, max_length=REASON_MAX)] = Field(
        description="Why, in words: how the holder asked and how you will confirm who "
        "they are (10 to 500 characters; audited)."
    )
    locale: Locale = Field("en", description=NOTICE_LOCALE)


class ApproveBody(_Strict):
    locale: Locale = Field("en", description=NOTICE_LOCALE)


class CancelBody(_Strict):
    reason: Annotated[str, Field(min_length=1, max_length=REASON_MAX)] = Field(
        description="Why (10 to 500 characters; audited)."
    )
    locale: Locale = Field("en", description=NOTICE_LOCALE)


class RecoveryCaseOut(BaseModel):
    id: str
    email: str
    state: Literal["open", "approved", "used", "cancelled", "expired"]
    reason: str
    opened_by: str
    opened_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    used_at: datetime | None
    cancelled_by: str | None
    cancelled_at: datetime | None
    expires_at: datetime = Field(
        description="Open: approve before this. Approved: the code works until this."
    )


class RecoveryApproved(RecoveryCaseOut):
    code: str = Field(
        description="The one-time code, shown in this answer only: give it to the holder "
        "out of band (in person, by phone) after confirming who they are. Never email it."
    )


def _service(request: Request) -> OperatorRecoveryService:
    return context.service(request).operator_recovery


def _out(case: OperatorRecovery, now: datetime) -> dict[str, object]:
    return {
        "id": case.id,
        "email": case.email,
        "state": case.state(now),
        "reason": case.reason,
        "opened_by": case.opened_by,
        "opened_at": case.opened_at,
        "approved_by": case.approved_by,
        "approved_at": case.approved_at,
        "used_at": case.used_at,
        "cancelled_by": case.cancelled_by,
        "cancelled_at": case.cancelled_at,
        "expires_at": case.expires_at,
    }


def _person(key: ApiKey) -> Actor:
    """The operator behind ``key`` (checked by ``_scopes(..., operator=True)``)."""
    if key.operator is None:
        raise SekishoError(ErrorCode.api_key_no_operator)
    return Actor(operator=key.operator, channel=_actor(key))


def _refused(error: CaseRefused) -> SekishoError:
    if isinstance(error, NoAccount):
        return SekishoError(ErrorCode.not_found)
    if isinstance(error, NotAnOperator):
        return SekishoError(ErrorCode.not_an_operator, detail={"explanation": str(error)})
    return SekishoError(ErrorCode.recovery_case_refused, detail={"explanation": str(error)})


@router.get("/recoveries", responses=refusals(*ANY, *KEY))
def list_recoveries(
    request: Request, _key: Annotated[ApiKey, Depends(_scopes("recovery:read"))]
) -> list[RecoveryCaseOut]:
    """The 50 newest recovery cases (never a code). Scope `recovery:read`."""
    service = _service(request)
    now = service.now()
    return [RecoveryCaseOut.model_validate(_out(case, now)) for case in service.recent()]


@router.post(
    "/recoveries",
    status_code=201,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        *KEY,
        ErrorCode.invalid_email,
        ErrorCode.not_found,
        *OPERATOR,
        ErrorCode.recovery_case_refused,
    ),
)
def open_recovery(
    request: Request,
    body: OpenBody,
    key: Annotated[ApiKey, Depends(_scopes("recovery:open", "users:read", operator=True))],
) -> RecoveryCaseOut:
    """Open a recovery for an account that lost every passkey and recovery code, with
    the reason; a second operator approves it. The holder is emailed.
    Refused with 409 `recovery_case_refused` (and why) when the account already has
    one under way. Scopes `recovery:open` and `users:read` (the answer shows whether
    the account exists)."""
    service = _service(request)
    try:
        case = service.open(body.email, body.reason, actor=_person(key), locale=body.locale)
    except CaseRefused as error:
        raise _refused(error) from error
    return RecoveryCaseOut.model_validate(_out(case, service.now()))


@router.post(
    "/recoveries/{case_id}/approve",
    response_model=RecoveryApproved,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, *KEY, *PATH_ID, *OPERATOR, ErrorCode.recovery_case_refused),
)
def approve_recovery(
    request: Request,
    case_id: CaseId,
    body: ApproveBody,
    key: Annotated[ApiKey, Depends(_scopes("recovery:approve", operator=True))],
) -> Response:
    """Approve an open case as an operator other than the one who opened it (on any
    channel): the answer holds the one-time code, this once. Refused with 409
    `recovery_case_refused` for the opener (whatever key or channel they use), an
    unknown, approved, used or expired case. Scope `recovery:approve`, on a key that
    names its operator."""
    service = _service(request)
    try:
        approved = service.approve(case_id, actor=_person(key), locale=body.locale)
    except CaseRefused as error:
        raise _refused(error) from error
    shown = RecoveryApproved.model_validate(
        {**_out(approved.case, service.now()), "code": approved.code}
    )
    return JSONResponse(shown.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.post(
    "/recoveries/{case_id}/cancel",
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, *KEY, *PATH_ID, *OPERATOR, ErrorCode.recovery_case_refused),
)
def cancel_recovery(
    request: Request,
    case_id: CaseId,
    body: CancelBody,
    key: Annotated[ApiKey, Depends(_scopes("recovery:open", operator=True))],
) -> RecoveryCaseOut:
    """End a case not used yet (for example when the holder never asked): it can no
    longer be approved and its code no longer works; the holder is emailed. Refused
    with 409 `recovery_case_refused` for a used, cancelled, expired or unknown case.
    Scope `recovery:open`."""
    service = _service(request)
    try:
        case = service.cancel(case_id, body.reason, actor=_person(key), locale=body.locale)
    except CaseRefused as error:
        raise _refused(error) from error
    return RecoveryCaseOut.model_validate(_out(case, service.now()))
