"""Sekisho's own pages. Every POST is CSRF-checked and answered with 303 (never 307)."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sekisho.core.clients import ClientInfo
from sekisho.core.completion import IssuedSession
from sekisho.core.encoding import base64url
from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import LOCALES, N_, gettext
from sekisho.web import context, wording
from sekisho.web.cookies import LANGUAGE_MAX_AGE
from sekisho.web.passkeys_api import passkey_item
from sekisho.web.rendering import page

router = APIRouter(include_in_schema=False)

NUDGE_MAX_AGE = 30 * 24 * 3600

EVENT_LABELS = {
    "signin.succeeded": N_("Signed in"),
    "signin.rejected": N_("Sign-in refused"),
    "signin.email.requested": N_("Sign-in email requested"),
    "signin.email.failed": N_("Sign-in attempt failed"),
    "signin.email.approved": N_("Sign-in approved from another device"),
    "session.signed_out": N_("Signed out"),
    "session.revoked_others": N_("Signed out everywhere else"),
    "session.revoked": N_("Signed out another session"),
    "session.timed_out": N_("Session timed out"),
    "session.replaced": N_("Earlier session replaced at sign-in"),
    "account.created": N_("Account created"),
    "mail.sent": N_("Email sent"),
    "mail.dropped": N_("Email not sent"),
    "mail.failed": N_("Email could not be delivered"),
    "account.disabled": N_("Account disabled by an operator"),
    "account.enabled": N_("Account enabled by an operator"),
    "passkey.added": N_("Passkey added"),
    "passkey.removed": N_("Passkey removed"),
    "passkey.renamed": N_("Passkey renamed"),
    "passkey.registration.failed": N_("Adding a passkey failed"),
    "passkey.signin.failed": N_("Passkey sign-in failed"),
    "passkey.clone_suspected": N_("Passkey counter went backwards (possible copy)"),
    "signin.password.verified": N_("Password checked"),
    "signin.password.failed": N_("Password sign-in failed"),
    "password.retired": N_("Password deleted: you now sign in without it"),
}


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _signed_in(request: Request, issued: IssuedSession) -> Response:
    response = _see_other("/account")
    jar = context.cookies(request)
    jar.set(response, jar.session, issued.token)
    return response


def _local_path(candidate: str | None) -> str:
    if candidate and candidate.startswith("/") and not candidate.startswith(("//", "/\\")):
        return candidate
    return "/"


@router.api_route("/", methods=["GET", "HEAD"])
def home(request: Request) -> Response:
    return _see_other("/account" if context.current_session(request) else "/signin")


@router.api_route("/lang", methods=["GET", "HEAD"])
def choose_language(request: Request, set: str = "en", next: str = "/") -> Response:
    response = _see_other(_local_path(next))
    if set in LOCALES:
        jar = context.cookies(request)
        jar.set(response, jar.language, set, max_age=LANGUAGE_MAX_AGE)
    return response


@router.api_route("/signin", methods=["GET", "HEAD"])
def signin_page(request: Request) -> Response:
    return _signin(request)


def _signin(
    request: Request, *, status_code: int = 200, error: str | None = None, email: str | None = None
) -> Response:
    return page(
        request,
        "signin.html",
        status_code=status_code,
        error=error,
        email=email,
        offers_passwords=context.service(request).offers_passwords(),
    )


@router.api_route("/signin/password", methods=["GET", "HEAD"])
def password_page(request: Request) -> Response:
    if not context.service(request).offers_passwords():
        return _see_other("/signin")
    return page(request, "password.html", error=None, email=None)


@router.post("/signin/password")
async def password_sign_in(request: Request) -> Response:
    form = await context.read_form(request)
    email = context.field(form, "email", max_length=1024)
    try:
        issued = context.service(request).sign_in_with_password(
            raw_email=email,
            password=context.field(form, "password", max_length=4096),
            client=context.client(request),
            previous=context.session_token(request),
        )
    except SekishoError as error:
        if error.code not in (ErrorCode.invalid_credentials, ErrorCode.password_too_long):
            raise
        message = gettext(context.locale(request), error.code.message)
        return page(
            request,
            "password.html",
            status_code=error.code.status,
            error=message,
            email=email[:254],
        )
    return _signed_in(request, issued)


@router.post("/signin/email")
async def request_email(request: Request) -> Response:
    form = await context.read_form(request)
    email = context.field(form, "email", max_length=1024)
    binding = context.binding_for_request(request)
    try:
        flow = context.service(request).request_email(
            raw_email=email,
            binding=binding,
            locale=context.locale(request),
            client=context.client(request),
        )
    except SekishoError as error:
        if error.code is not ErrorCode.invalid_email:
            raise
        message = gettext(context.locale(request), error.code.message)
        return _signin(request, status_code=error.code.status, error=message, email=email[:254])
    response = _see_other("/signin/email/wait?" + urlencode({"flow": flow.flow_id}))
    context.set_binding(request, response, binding)
    return response


@router.api_route("/signin/email/wait", methods=["GET", "HEAD"])
def wait_page(request: Request, flow: str = "") -> Response:
    return _wait(request, flow)


def _wait(
    request: Request, flow_id: str, error: str | None = None, status_code: int = 200
) -> Response:
    sekisho = context.service(request)
    state, approval_number = sekisho.flow_status(flow_id=flow_id, binding=context.binding(request))
    if state not in ("pending", "approved"):
        raise SekishoError(ErrorCode.invalid_or_expired)
    return page(
        request,
        "wait.html",
        status_code=status_code,
        flow_id=flow_id,
        approval_number=approval_number,
        expires_minutes=int(sekisho.settings.email_link_ttl.total_seconds() // 60),
        error=error,
    )


@router.post("/signin/email/code")
async def submit_code(request: Request) -> Response:
    form = await context.read_form(request)
    flow_id = context.field(form, "flow", max_length=64)
    code = context.field(form, "code", max_length=32).strip()
    try:
        issued = context.service(request).verify_code(
            flow_id=flow_id,
            code=code,
            binding=context.binding(request),
            client=context.client(request),
            previous=context.session_token(request),
        )
    except SekishoError as error:
        if error.code not in (ErrorCode.code_incorrect, ErrorCode.invalid_code_format):
            raise
        message = gettext(context.locale(request), error.code.message)
        return _wait(request, flow_id, error=message, status_code=error.code.status)
    return _signed_in(request, issued)


@router.post("/signin/email/complete")
async def complete_approved(request: Request) -> Response:
    form = await context.read_form(request)
    issued = context.service(request).complete_approved(
        flow_id=context.field(form, "flow", max_length=64),
        binding=context.binding(request),
        client=context.client(request),
        previous=context.session_token(request),
    )
    return _signed_in(request, issued)


@router.api_route("/signin/email/link", methods=["GET", "HEAD"])
def link_page(request: Request, token: str = "") -> Response:
    """Only shows a confirmation page: GET and HEAD never spend anything (case 1)."""
    view = context.service(request).inspect_link(
        token=token[:256], binding=context.binding(request)
    )
    return page(request, "link.html", view=view, token=token, error=None)


@router.post("/signin/email/link")
async def confirm_link(request: Request) -> Response:
    form = await context.read_form(request)
    issued = context.service(request).confirm_link(
        token=context.field(form, "token", max_length=256),
        binding=context.binding(request),
        client=context.client(request),
        previous=context.session_token(request),
    )
    return _signed_in(request, issued)


@router.post("/signin/email/link/code")
async def link_code(request: Request) -> Response:
    form = await context.read_form(request)
    token = context.field(form, "token", max_length=256)
    sekisho = context.service(request)
    try:
        issued = sekisho.verify_link_code(
            token=token,
            code=context.field(form, "code", max_length=32).strip(),
            client=context.client(request),
            previous=context.session_token(request),
        )
    except SekishoError as error:
        if error.code not in (ErrorCode.code_incorrect, ErrorCode.invalid_code_format):
            raise
        view = sekisho.inspect_link(token=token, binding=context.binding(request))
        message = gettext(context.locale(request), error.code.message)
        return page(
            request,
            "link.html",
            status_code=error.code.status,
            view=view,
            token=token,
            error=message,
        )
    return _signed_in(request, issued)


@router.post("/signin/email/link/approve")
async def approve(request: Request) -> Response:
    form = await context.read_form(request)
    number = context.field(form, "number", max_length=8).strip()
    if not (number.isascii() and number.isdigit()):
        raise SekishoError(ErrorCode.invalid_field, detail={"field": "number"})
    context.service(request).approve(
        token=context.field(form, "token", max_length=256),
        number=int(number),
        client=context.client(request),
    )
    language = context.locale(request)
    return page(
        request,
        "message.html",
        heading=gettext(language, "Sign-in approved"),
        text=gettext(language, "Go back to the other screen: it signs you in by itself."),
        error_code=None,
        link=None,
        link_text=None,
    )


@router.api_route("/account", methods=["GET", "HEAD"])
def account(request: Request, added: str = "", removed: str = "") -> Response:
    """The account page. ``added`` names a passkey just registered (passkey.js comes
    back here with its id), which is confirmed and offered a name; ``removed`` confirms
    a removal. Remove buttons follow the same freshness rule the service enforces."""
    session = context.current_session(request)
    if session is None:
        return _see_other("/signin")
    language = context.locale(request)
    sekisho = context.service(request)
    passkeys = sekisho.passkeys.passkeys_of(session)
    nudge = (
        sekisho.settings.passkey_nudge
        and not passkeys
        and "email" in session.amr
        and context.cookies(request).passkey_nudge not in request.cookies
    )
    items = [passkey_item(passkey) for passkey in passkeys]
    action_names = _distinct_names([(item.id, item.name) for item in items])
    return page(
        request,
        "account.html",
        view=sekisho.account(session),
        current=session,
        passkeys=items,
        action_names=action_names,
        added=next((item for item in items if item.id == added[:64]), None),
        removed=removed == "1",
        credential_ids=[base64url(passkey.credential_id) for passkey in passkeys],
        rp_id=sekisho.passkeys.relying_party.rp_id,
        freshness=sekisho.passkeys.freshness(session, passkeys),
        nudge=nudge,
        password_session="pwd" in session.amr,
        describe=lambda item: ClientInfo.of(item.ip, item.user_agent).describe(language),
        signed_in_with=lambda amr, aal: wording.signed_in_with(language, amr, aal),
        method=lambda amr: wording.method_label(language, amr) if amr else "",
        event_label=lambda name: gettext(language, EVENT_LABELS.get(name) or name),
    )


def _distinct_names(named: list[tuple[str, str]]) -> dict[str, str]:
    """Names for row actions, distinct as accessible names must be: passkeys sharing a
    name (both named after their model, say) become "Passkey (1)", "Passkey (2)" in
    table order."""
    totals = Counter(name for _id, name in named)
    seen: Counter[str] = Counter()
    distinct = {}
    for item_id, name in named:
        seen[name] += 1
        distinct[item_id] = name if totals[name] == 1 else f"{name} ({seen[name]})"
    return distinct


@router.api_route("/account/passkeys/{passkey_id}/remove", methods=["GET", "HEAD"])
def confirm_remove_passkey(request: Request, passkey_id: str) -> Response:
    """Asks before removing; the form posts to ``.../delete``. Only offered when the
    service would allow the removal now (the same freshness rule)."""
    session = context.current_session(request)
    if session is None:
        return _see_other("/signin")
    passkeys = context.service(request).passkeys
    registered = passkeys.passkeys_of(session)
    passkey = next((item for item in registered if item.id == passkey_id[:64]), None)
    if passkey is None:
        raise SekishoError(ErrorCode.not_found)
    if not passkeys.freshness(session, registered).may_remove:
        raise SekishoError(ErrorCode.reauthentication_required)
    return page(request, "account_remove.html", passkey=passkey_item(passkey))


@router.post("/account/passkeys/{passkey_id}/rename")
async def rename_passkey(request: Request, passkey_id: str) -> Response:
    form = await context.read_form(request)
    context.service(request).passkeys.rename(
        context.require_session(request),
        passkey_id[:64],
        context.field(form, "name", max_length=200),
        context.client(request),
    )
    return _see_other("/account")


@router.post("/account/passkeys/{passkey_id}/delete")
async def delete_passkey(request: Request, passkey_id: str) -> Response:
    await context.read_form(request)
    context.service(request).passkeys.remove(
        context.require_session(request),
        passkey_id[:64],
        locale=context.locale(request),
        client=context.client(request),
    )
    return _see_other("/account?removed=1")


@router.post("/account/nudge/dismiss")
async def dismiss_nudge(request: Request) -> Response:
    await context.read_form(request)
    response = _see_other("/account")
    jar = context.cookies(request)
    jar.set(response, jar.passkey_nudge, "1", max_age=NUDGE_MAX_AGE)
    return response


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    await context.read_form(request)
    session = context.current_session(request)
    if session is not None:
        context.service(request).sign_out(session, context.client(request))
    response = _see_other("/signin")
    jar = context.cookies(request)
    jar.clear(response, jar.session)
    return response


@router.post("/account/sessions/revoke-others")
async def revoke_others(request: Request) -> Response:
    await context.read_form(request)
    context.service(request).revoke_others(
        context.require_session(request), context.client(request)
    )
    return _see_other("/account")


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(request: Request, session_id: str) -> Response:
    await context.read_form(request)
    context.service(request).revoke_session(
        context.require_session(request), session_id, context.client(request)
    )
    return _see_other("/account")
