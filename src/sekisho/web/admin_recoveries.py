"""Operator pages for operator-assisted recovery (issue 10 "Recovery that keeps the tier"
and "Operators"; SECURITY.md case 54): the recent cases, a form to open one with a reason,
a second operator's approval that shows the one-time code this once, and cancelling with
a reason. docs/flows/recovery.md draws them.

Invariants:
- the same door as ``/admin/migration`` (:func:`sekisho.web.admin.require_operator`):
  a non-operator gets the 404 of a missing page, a restricted session or one that is not
  a passkey at AAL2 or the operator's tier's level gets a refusal page;
- one code path with the admin API and the command line (``OperatorRecoveryService``),
  so the same checks, audit events and notices to the holder; the operator is the
  signed-in address, recorded as ``operator:<address>`` like on every channel, with
  the channel ``pages`` in the audit events (:mod:`sekisho.core.operators`);
- every form is a CSRF-checked same-origin post (:data:`sekisho.web.context.CheckedForm`);
- a refused step is a page that says why in the reader's language, never a 500; the
  one-time code appears only on the approval's answer, which no cache keeps.

Every handler is a plain ``def`` (run in the thread pool), like ``web/pages.py``.
"""

from __future__ import annotations

import re

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sekisho.core.operators import Actor
from sekisho.core.records import User
from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import N_, gettext
from sekisho.operator_recovery_service import CASE_ID_PATTERN, REASON_MAX, CaseRefused
from sekisho.web import context
from sekisho.web.admin import require_operator
from sekisho.web.context import CheckedForm
from sekisho.web.rendering import page

router = APIRouter(include_in_schema=False)
CASES = "/admin/recoveries"
CASE_ID = re.compile(CASE_ID_PATTERN)

#: What a refused step says, by :attr:`CaseRefused.why`.
REFUSALS = {
    "reason": N_(
        "Give the reason in 10 to 500 characters: how the holder asked, and how you will "
        "confirm who they are."
    ),
    "cancel_reason": N_("Give the reason for cancelling in 10 to 500 characters."),
    "no_account": N_("No account has this email address. Check it with the holder."),
    "disabled": N_("This account is disabled. Enable it before opening a recovery."),
    "no_passkeys": N_(
        "This account's tier allows no passkeys, and a recovery ends by adding one, so it "
        "cannot be recovered this way."
    ),
    "pending": N_(
        "This account already has a recovery under way. Approve or cancel that one first."
    ),
    "unknown": N_("There is no such recovery case."),
    "own_case": N_(
        "You opened this case, so you cannot approve it: a second operator must check it "
        "and approve it."
    ),
    "unattributed": N_(
        "This case was opened before operators were recorded by address, so nobody can "
        "approve it: cancel it and open a new one."
    ),
    "not_operator": N_("Only an operator may take this step."),
    "changed": N_("This case changed meanwhile: another operator approved it, or it expired."),
    "approved": N_("This case is already approved: its one-time code was shown to the approver."),
    "used": N_("This case is finished: the holder has already used its code."),
    "cancelled": N_("This case was cancelled."),
    "expired": N_("This case has expired. Open a new one if the holder still needs help."),
}


def _see_cases() -> RedirectResponse:
    return RedirectResponse(CASES, status_code=303)


def _actor(operator: User) -> Actor:
    """The signed-in operator, taking a step on these pages."""
    return Actor(operator=operator.email, channel="pages")


def _case_id(case_id: str) -> str:
    if not CASE_ID.fullmatch(case_id):
        raise SekishoError(ErrorCode.not_found)
    return case_id


def _cases_page(
    request: Request,
    operator: User,
    *,
    status_code: int = 200,
    error: str | None = None,
    email: str = "",
    reason: str = "",
) -> Response:
    service = context.service(request).operator_recovery
    return page(
        request,
        "admin_recoveries.html",
        status_code=status_code,
        cases=service.recent(),
        now=service.now(),
        me=_actor(operator).recorded,
        error=error,
        email=email,
        reason=reason,
        reason_max=REASON_MAX,
    )


def _refused(request: Request, error: CaseRefused) -> Response:
    """A refused approval or cancellation, as a page with the way back to the cases
    (only a cancellation has a reason to refuse)."""
    language = context.locale(request)
    why = "cancel_reason" if error.why == "reason" else error.why
    return page(
        request,
        "message.html",
        status_code=400 if error.why == "reason" else 409,
        heading=gettext(language, "This recovery step was refused"),
        text=gettext(language, REFUSALS.get(why, REFUSALS["unknown"])),
        error_code=ErrorCode.recovery_case_refused.name,
        link=CASES,
        link_text=gettext(language, "Back to recovery cases"),
    )


@router.api_route(CASES, methods=["GET", "HEAD"])
def cases(request: Request) -> Response:
    """The newest cases (never a code) and the form to open one."""
    return _cases_page(request, require_operator(request))


@router.post(CASES)
def open_case(request: Request, form: CheckedForm) -> Response:
    """Open a case with a reason; a refusal shows the form again, filled in, with why."""
    operator = require_operator(request)
    email = context.field(form, "email", max_length=254)
    reason = context.field(form, "reason", max_length=REASON_MAX * 2)
    try:
        context.service(request).operator_recovery.open(
            email, reason, actor=_actor(operator), locale=context.locale(request)
        )
    except CaseRefused as refusal:
        return _cases_page(
            request,
            operator,
            status_code=400 if refusal.why == "reason" else 409,
            error=gettext(context.locale(request), REFUSALS[refusal.why]),
            email=email,
            reason=reason,
        )
    return _see_cases()


@router.post(CASES + "/{case_id}/approve")
def approve_case(request: Request, case_id: str, _form: CheckedForm) -> Response:
    """A second operator's approval: the one-time code, on this answer only."""
    operator = require_operator(request)
    service = context.service(request).operator_recovery
    try:
        approved = service.approve(
            _case_id(case_id), actor=_actor(operator), locale=context.locale(request)
        )
    except CaseRefused as refusal:
        return _refused(request, refusal)
    response = page(
        request,
        "admin_recovery_code.html",
        case=approved.case,
        code=approved.code,
        sign_in_url=context.service(request).settings.public_origin + "/signin/recovery/operator",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post(CASES + "/{case_id}/cancel")
def cancel_case(request: Request, case_id: str, form: CheckedForm) -> Response:
    """End a case not used yet, with a reason."""
    operator = require_operator(request)
    reason = context.field(form, "reason", max_length=REASON_MAX * 2)
    try:
        context.service(request).operator_recovery.cancel(
            _case_id(case_id), reason, actor=_actor(operator), locale=context.locale(request)
        )
    except CaseRefused as refusal:
        return _refused(request, refusal)
    return _see_cases()
