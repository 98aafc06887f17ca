"""The JSON API for apps that draw their own UI; the same service calls as the pages.

Links and codes travel in JSON bodies (never in URLs), every POST needs
``Content-Type: application/json`` and a same-site Origin, and errors are
``{"error": <stable code>, "message": ...}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from sekisho.core.completion import IssuedSession
from sekisho.core.records import Session
from sekisho.errors import ErrorCode, SekishoError
from sekisho.web import context, pacing
from sekisho.web.answers import json_answer
from sekisho.web.lean_route import LeanRoute
from sekisho.web.params import ApprovalNumber, Code, Email, FlowId, SessionId, Token
from sekisho.web.refusals import ANY, CROSS_SITE, JSON_BODY, PATH_ID, SIGNED_IN, refusals

router = APIRouter(prefix="/api/v1", tags=["api"], route_class=LeanRoute)
JsonOnly = Depends(context.require_json)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EmailRequest(_Strict):
    email: Email
    locale: Literal["en", "ja"] | None = None


class PasswordBody(_Strict):
    email: Annotated[str, Field(max_length=1024)]
    password: Annotated[str, Field(max_length=4096)]


class CodeBody(_Strict):
    code: Code


class TokenBody(_Strict):
    token: Token


class TokenCodeBody(TokenBody):
    code: Code


class ApproveBody(TokenBody):
    number: ApprovalNumber


class EmptyBody(_Strict):
    pass


class FlowCreated(BaseModel):
    flow_id: str
    approval_number: int
    expires_at: datetime


class FlowStatus(BaseModel):
    flow_id: str
    state: str
    email_delivery: Literal["normal", "delayed"] = Field(
        description="`delayed` while the mail server is refusing or not answering, for "
        "every sign-in alike (it says nothing about this address): the email is retried "
        "until the flow expires, and the person should be told so."
    )


class LinkInfo(BaseModel):
    same_browser: bool
    requested_at: datetime
    requested_ip: str
    requested_device: str


class SessionInfo(BaseModel):
    session_id: str
    user_id: str
    amr: list[str]
    aal: int
    auth_time: datetime
    expires_at: datetime
    restriction: str | None = None


class SessionItem(BaseModel):
    session_id: str
    ip: str
    user_agent: str
    created_at: datetime
    last_seen_at: datetime
    current: bool


class Revoked(BaseModel):
    revoked: Annotated[int, Field(ge=0)]


#: What a code can be refused with (the 6 digits, spent or expired, wrong, too many tries).
_CODE_REFUSALS = (
    ErrorCode.invalid_code_format,
    ErrorCode.invalid_or_expired,
    ErrorCode.code_incorrect,
    ErrorCode.rate_limited,
)


def session_info(session: Session) -> SessionInfo:
    return SessionInfo(
        session_id=session.id,
        user_id=session.user_id,
        amr=list(session.amr),
        aal=session.aal,
        auth_time=session.auth_time,
        expires_at=session.expires_at,
        restriction=session.restriction,
    )


def signed_in(request: Request, issued: IssuedSession) -> Response:
    """The JSON answer to a completed sign-in, with the new session cookie."""
    response = json_answer(session_info(issued.session))
    jar = context.cookies(request)
    jar.set(response, jar.session, issued.token)
    return response


@router.post(
    "/signin/email",
    status_code=202,
    response_model=FlowCreated,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, ErrorCode.invalid_email, ErrorCode.rate_limited),
)
def request_email(request: Request, body: EmailRequest) -> Response:
    """Send one email with a sign-in link and code. The answer never says whether an
    account exists; the response sets the browser-binding cookie."""
    binding = context.binding_for_request(request)
    flow = context.service(request).request_email(
        raw_email=body.email,
        binding=binding,
        locale=body.locale or context.locale(request),
        client=context.client(request),
    )
    response = json_answer(
        FlowCreated(
            flow_id=flow.flow_id, approval_number=flow.approval_number, expires_at=flow.expires_at
        ),
        status_code=202,
    )
    context.set_binding(request, response, binding)
    return response


@router.post(
    "/signin/password",
    response_model=SessionInfo,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        ErrorCode.invalid_email,
        ErrorCode.invalid_credentials,
        ErrorCode.password_too_long,
        ErrorCode.rate_limited,
    ),
)
async def sign_in_with_password(request: Request, body: PasswordBody) -> Response:
    """The migration bridge for imported accounts that still hold a password (AAL1,
    amr ``pwd``). The answer is the same, in the same time, for unknown addresses,
    accounts without a password and wrong passwords: 400 ``invalid_credentials``."""
    issued = await pacing.password_attempt(request, raw_email=body.email, password=body.password)
    return signed_in(request, issued)


@router.get(
    "/signin/email/flows/{flow_id}",
    response_model=FlowStatus,
    responses=refusals(*ANY, *PATH_ID, ErrorCode.invalid_or_expired),
)
def flow_status(request: Request, flow_id: FlowId) -> Response:
    state, _number = context.service(request).flow_status(
        flow_id=flow_id, binding=context.binding(request)
    )
    delivery = "delayed" if context.mail_delayed(request) else "normal"
    return json_answer(FlowStatus(flow_id=flow_id, state=state, email_delivery=delivery))


@router.post(
    "/signin/email/flows/{flow_id}/code",
    response_model=SessionInfo,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, *_CODE_REFUSALS, ErrorCode.other_browser),
)
def submit_code(request: Request, flow_id: FlowId, body: CodeBody) -> Response:
    issued = context.service(request).verify_code(
        flow_id=flow_id,
        code=body.code.strip(),
        binding=context.binding(request),
        client=context.client(request),
        previous=context.session_token(request),
    )
    return signed_in(request, issued)


@router.post(
    "/signin/email/flows/{flow_id}/complete",
    response_model=SessionInfo,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, ErrorCode.invalid_or_expired, ErrorCode.other_browser),
)
def complete_approved(request: Request, flow_id: FlowId, body: EmptyBody) -> Response:
    issued = context.service(request).complete_approved(
        flow_id=flow_id,
        binding=context.binding(request),
        client=context.client(request),
        previous=context.session_token(request),
    )
    return signed_in(request, issued)


@router.post(
    "/signin/email/link/inspect",
    response_model=LinkInfo,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, ErrorCode.invalid_or_expired),
)
def inspect_link(request: Request, body: TokenBody) -> Response:
    """What a link is for, without spending it."""
    view = context.service(request).inspect_link(token=body.token, binding=context.binding(request))
    return json_answer(
        LinkInfo(
            same_browser=view.same_browser,
            requested_at=view.requested_at,
            requested_ip=view.requested_ip,
            requested_device=view.requested_device,
        )
    )


@router.post(
    "/signin/email/link/confirm",
    response_model=SessionInfo,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, ErrorCode.invalid_or_expired, ErrorCode.other_browser),
)
def confirm_link(request: Request, body: TokenBody) -> Response:
    issued = context.service(request).confirm_link(
        token=body.token,
        binding=context.binding(request),
        client=context.client(request),
        previous=context.session_token(request),
    )
    return signed_in(request, issued)


@router.post(
    "/signin/email/link/code",
    response_model=SessionInfo,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, *_CODE_REFUSALS),
)
def link_code(request: Request, body: TokenCodeBody) -> Response:
    issued = context.service(request).verify_link_code(
        token=body.token,
        code=body.code.strip(),
        client=context.client(request),
        previous=context.session_token(request),
    )
    return signed_in(request, issued)


@router.post(
    "/signin/email/link/approve",
    status_code=204,
    dependencies=[JsonOnly],
    responses=refusals(
        *JSON_BODY,
        ErrorCode.invalid_or_expired,
        ErrorCode.approval_refused,
        ErrorCode.rate_limited,
    ),
)
def approve(request: Request, body: ApproveBody) -> Response:
    context.service(request).approve(
        token=body.token, number=body.number, client=context.client(request)
    )
    return Response(status_code=204)


@router.get("/session", response_model=SessionInfo, responses=refusals(*ANY, *SIGNED_IN))
def current_session(request: Request) -> SessionInfo:
    return session_info(context.require_any_session(request))


@router.delete("/session", status_code=204, responses=refusals(*ANY, *CROSS_SITE, *SIGNED_IN))
def sign_out(request: Request) -> Response:
    context.check_origin(request)
    session = context.require_any_session(request)
    context.service(request).sign_out(session, context.client(request))
    response = Response(status_code=204)
    jar = context.cookies(request)
    jar.clear(response, jar.session)
    return response


@router.get("/sessions", response_model=list[SessionItem], responses=refusals(*ANY, *SIGNED_IN))
def list_sessions(request: Request) -> list[SessionItem]:
    session = context.require_session(request)
    view = context.service(request).account(session)
    return [
        SessionItem(
            session_id=item.id,
            ip=item.ip,
            user_agent=item.user_agent,
            created_at=item.created_at,
            last_seen_at=item.last_seen_at,
            current=item.id == session.id,
        )
        for item in view.sessions
    ]


@router.post(
    "/sessions/revoke-others",
    response_model=Revoked,
    dependencies=[JsonOnly],
    responses=refusals(*JSON_BODY, *SIGNED_IN),
)
def revoke_others(request: Request, body: EmptyBody) -> Revoked:
    count = context.service(request).revoke_others(
        context.require_session(request), context.client(request)
    )
    return Revoked(revoked=count)


@router.delete(
    "/sessions/{session_id:session_id}",
    status_code=204,
    responses=refusals(*ANY, *CROSS_SITE, *SIGNED_IN, *PATH_ID, ErrorCode.not_found),
)
def revoke_session(request: Request, session_id: SessionId) -> Response:
    context.check_origin(request)
    if not context.service(request).revoke_session(
        context.require_session(request), session_id, context.client(request)
    ):
        raise SekishoError(ErrorCode.not_found)
    return Response(status_code=204)
