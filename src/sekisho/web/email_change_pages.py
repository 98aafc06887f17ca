"""Pages for changing the account's email address: the request from the account page,
the code form that follows it, and the page the emailed link opens (which only looks;
its button spends the link, so a mail scanner fetching the link changes nothing).

Every handler is a plain ``def`` (run in the thread pool), like ``web/pages.py``;
the rules are in :mod:`sekisho.email_change_service`.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import gettext
from sekisho.web import context
from sekisho.web.context import CheckedForm
from sekisho.web.rendering import page

router = APIRouter(include_in_schema=False)

#: Refusals shown on the request form itself.
_REQUEST_REFUSALS = (ErrorCode.invalid_email, ErrorCode.email_unchanged)
#: Refusals shown on the code form itself.
_CODE_REFUSALS = (ErrorCode.invalid_code_format, ErrorCode.code_incorrect)


@router.post("/account/email")
def request_change(request: Request, form: CheckedForm) -> Response:
    """Send the confirmation to the new address, then ask for its code. The page is
    the same whether or not the address already has an account."""
    session = context.require_session(request)
    email = context.field(form, "email", max_length=1024)
    try:
        context.service(request).email_change.request(
            session, raw_email=email, client=context.client(request)
        )
    except SekishoError as error:
        if error.code not in _REQUEST_REFUSALS:
            raise
        return page(
            request,
            "email_change.html",
            status_code=error.code.status,
            state="request",
            email=email[:254],
            error=gettext(context.locale(request), error.code.message),
        )
    return page(request, "email_change.html", state="sent", email=email[:254], error=None)


@router.post("/account/email/code")
def confirm_code(request: Request, form: CheckedForm) -> Response:
    session = context.require_session(request)
    email = context.field(form, "email", max_length=1024)[:254]
    try:
        changed = context.service(request).email_change.confirm_code(
            session,
            code=context.field(form, "code", max_length=16).strip(),
            client=context.client(request),
        )
    except SekishoError as error:
        if error.code not in _CODE_REFUSALS:
            raise
        return page(
            request,
            "email_change.html",
            status_code=error.code.status,
            state="sent",
            email=email,
            error=gettext(context.locale(request), error.code.message),
        )
    return page(request, "email_change.html", state="done", email=changed, error=None)


@router.api_route("/account/email/confirm", methods=["GET", "HEAD"])
def link_page(request: Request, token: str = "") -> Response:
    """Looks only: the button posts the token."""
    return page(request, "email_change.html", state="link", token=token[:128], error=None)


@router.post("/account/email/confirm")
def confirm_link(request: Request, form: CheckedForm) -> Response:
    changed = context.service(request).email_change.confirm_link(
        token=context.field(form, "token", max_length=128), client=context.client(request)
    )
    return page(request, "email_change.html", state="done", email=changed, error=None)
