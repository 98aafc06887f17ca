"""Recovery pages: sign-in with a recovery code, the recovery session's account page, and
making new recovery codes (shown once, with copy and plain-text download).

Every handler is a plain ``def`` (run in the thread pool), like ``web/pages.py``.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sekisho.core import recovery_codes
from sekisho.core.encoding import base64url
from sekisho.core.records import Session
from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import N_, gettext
from sekisho.web import context
from sekisho.web.context import CheckedForm
from sekisho.web.passkeys_api import passkey_item
from sekisho.web.rendering import page

router = APIRouter(include_in_schema=False)

#: The refusals the recovery form shows on the form itself.
_FORM_REFUSALS = (
    ErrorCode.recovery_failed,
    ErrorCode.recovery_code_format,
    ErrorCode.invalid_email,
)
DOWNLOAD_NAME = "sekisho-recovery-codes.txt"
#: ``recovery_failed`` on the operator's code form, which has no recovery code in it.
_OPERATOR_CODE_FAILED = N_(
    "That email address and code do not match a one-time code that can be used. Check "
    "both; a code works once and for a short time, so our staff may need to give you a "
    "new one."
)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.api_route("/signin/recovery", methods=["GET", "HEAD"])
def recovery_page(request: Request) -> Response:
    return page(request, "recovery_signin.html", error=None, email=None, operator=False)


@router.api_route("/signin/recovery/operator", methods=["GET", "HEAD"])
def operator_recovery_page(request: Request) -> Response:
    """The form for the one-time code operators hand over (``operator_recovery_service``)."""
    return page(request, "recovery_signin.html", error=None, email=None, operator=True)


@router.post("/signin/recovery")
def recovery_sign_in(request: Request, form: CheckedForm) -> Response:
    """The same page and status for an unknown address and a wrong or used code."""
    return _recovery_form(request, form, operator=False)


@router.post("/signin/recovery/operator")
def operator_recovery_sign_in(request: Request, form: CheckedForm) -> Response:
    """As :func:`recovery_sign_in`, for an operator's one-time code."""
    return _recovery_form(request, form, operator=True)


def _recovery_form(request: Request, form: CheckedForm, *, operator: bool) -> Response:
    email = context.field(form, "email", max_length=1024)
    sekisho = context.service(request)
    sign_in = sekisho.operator_code.sign_in if operator else sekisho.recovery.sign_in
    try:
        issued = sign_in(
            raw_email=email,
            code=context.field(form, "code", max_length=64),
            client=context.client(request),
            previous=context.session_token(request),
        )
    except SekishoError as error:
        if error.code not in _FORM_REFUSALS:
            raise
        language = context.locale(request)
        return page(
            request,
            "recovery_signin.html",
            status_code=error.code.status,
            error=(
                gettext(language, _OPERATOR_CODE_FAILED)
                if operator and error.code is ErrorCode.recovery_failed
                else gettext(language, error.code.message)
            ),
            email=email[:254],
            operator=operator,
        )
    response = _see_other("/account")
    jar = context.cookies(request)
    jar.set(response, jar.session, issued.token)
    return response


def recovery_account(request: Request, session: Session, *, added: str) -> Response:
    """The account page of a recovery session: add a passkey, then make new codes."""
    sekisho = context.service(request)
    status = sekisho.recovery.status(session)
    passkeys = sekisho.passkeys.passkeys_of(session)
    user = sekisho.user_of(session)
    enrolled = status.recovery.passkey_id if status.recovery else None
    new_passkey = next((p for p in passkeys if p.id == enrolled), None)
    return page(
        request,
        "account_recovery.html",
        user=user,
        status=status,
        new_passkey=passkey_item(new_passkey) if new_passkey else None,
        just_added=bool(added) and new_passkey is not None and added == new_passkey.id,
        credential_ids=[base64url(passkey.credential_id) for passkey in passkeys],
        rp_id=sekisho.passkeys.relying_party.rp_id,
        by_operator=sekisho.operator_recovery.made_session(session.id),
    )


@router.post("/account/recovery-codes")
def generate_codes(request: Request, _form: CheckedForm) -> Response:
    """Make a new set (replacing the old one) and show it, this once."""
    session = context.require_any_session(request)
    codes = context.service(request).recovery.generate(session, client=context.client(request))
    return page(
        request,
        "recovery_codes.html",
        codes=codes,
        recovery_session=session.restriction is not None,
    )


@router.post("/account/recovery-codes/download")
def download_codes(request: Request, form: CheckedForm) -> Response:
    """The codes just shown, as a plain-text file. Sekisho keeps no copy of them, so the
    page posts them back; only well-formed codes are echoed, never other text."""
    context.require_any_session(request)
    codes = form.getlist("code")
    if not codes or len(codes) > recovery_codes.CODE_COUNT:
        raise SekishoError(ErrorCode.invalid_field, detail={"field": "code"})
    lines = []
    for code in codes:
        if not isinstance(code, str) or recovery_codes.canonical(code) is None:
            raise SekishoError(ErrorCode.invalid_field, detail={"field": "code"})
        lines.append(code)
    language = context.locale(request)
    heading = gettext(language, "Sekisho recovery codes for %(origin)s", origin=_origin(request))
    note = gettext(language, "Each code works once. Keep them somewhere safe.")
    body = "\n".join([heading, note, "", *lines, ""])
    return Response(
        body,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{DOWNLOAD_NAME}"'},
    )


def _origin(request: Request) -> str:
    return context.service(request).settings.public_origin
