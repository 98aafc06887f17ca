"""Sekisho's own pages. Every POST is CSRF-checked and answered with 303 (never 307).

Every handler is a plain ``def`` (run in the thread pool); POST handlers take their form
as :data:`~sekisho.web.context.CheckedForm`, the one place that reads a form on the loop.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sekisho.core.addresses import mask_email
from sekisho.core.clients import ClientInfo
from sekisho.core.completion import IssuedSession
from sekisho.core.encoding import base64url
from sekisho.core.records import Session
from sekisho.core.recovery import RESTRICTION_RECOVERY
from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import LOCALES, N_, gettext, minutes_left
from sekisho.oidc.discovery import provider as oidc_provider
from sekisho.web import connected_apps, context, pacing, recovery_pages, wording
from sekisho.web.context import CheckedForm
from sekisho.web.cookies import LANGUAGE_MAX_AGE
from sekisho.web.passkeys_api import passkey_item
from sekisho.web.rendering import page

router = APIRouter(include_in_schema=False)

NUDGE_MAX_AGE = 30 * 24 * 3600

#: The events the account page lists under "Recent activity", worded for the holder.
#: Only these are listed (the query filters on them), so no row shows an internal
#: name; events written for operators and applications (tokens issued, pushed
#: requests, attributes set) are in the audit log, not on this page.
EVENT_LABELS = {
    "signin.succeeded": N_("Signed in"),
    "signin.rejected": N_("Sign-in refused"),
    "signin.email.requested": N_("Sign-in email requested"),
    "signin.email.failed": N_("Sign-in attempt failed"),
    "signin.email.approved": N_("Sign-in approved from another device"),
    "signin.email.denied": N_("Sign-in cancelled from the email (“This wasn't me”)"),
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
    "email.change_requested": N_("Asked to change the email address"),
    "email.change_code_failed": N_("Wrong code to change the email address"),
    "email.changed": N_("Email address changed"),
    "recovery.code.used": N_("Signed in with a recovery code"),
    "recovery.code.failed": N_("Recovery code refused"),
    "recovery.codes.generated": N_("New recovery codes made"),
    "recovery.completed": N_("Account recovered with a new passkey"),
    "signin.new_browser": N_("Signed in from a new browser"),
    "oidc.consent.revoked": N_("Access taken back from a connected app"),
    "oidc.logout": N_("Signed out at an application's request"),
    "oidc.consent.granted": N_("Access given to a connected app"),
    "oidc.authorization.granted": N_("Signed in to an application"),
    "oidc.refresh.reused": N_("An app's old sign-in was used again: its access was ended"),
    "signin.restricted": N_("Signed in to add a passkey first"),
    "session.ended_by_tier": N_("Signed out by a change of tier"),
    "account.tier_set": N_("Account tier changed"),
    "account.tier_changed": N_("Account tier changed"),
    "passkey.removal_refused": N_("Removing a passkey refused"),
    "recovery.operator.opened": N_("Recovery by our staff opened"),
    "recovery.operator.approved": N_("Recovery by our staff approved"),
    "recovery.operator.cancelled": N_("Recovery by our staff cancelled"),
    "recovery.operator.used": N_("Signed in with a code from our staff"),
    "recovery.operator.failed": N_("Code from our staff refused"),
    "confirmation.confirmed": N_("Transaction confirmed with a passkey"),
    "confirmation.passkey.failed": N_("Transaction confirmation failed"),
}


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _signed_in(request: Request, issued: IssuedSession) -> Response:
    response = _see_other(context.after_sign_in(request))
    jar = context.cookies(request)
    jar.set(response, jar.session, issued.token)
    return response


def _local_path(candidate: str | None) -> str:
    if candidate and candidate.startswith("/") and not candidate.startswith(("//", "/\\")):
        return candidate
    return "/"


@router.api_route("/", methods=["GET", "HEAD"])
def home(request: Request) -> Response:
    return _see_other("/account" if context.any_session(request) else "/signin")


@router.api_route("/lang", methods=["GET", "HEAD"])
def choose_language(request: Request, set: str = "en", next: str = "/") -> Response:
    response = _see_other(_local_path(next))
    if set in LOCALES:
        jar = context.cookies(request)
        jar.set(response, jar.language, set, max_age=LANGUAGE_MAX_AGE)
    return response


@router.api_route("/signin", methods=["GET", "HEAD"])
def signin_page(request: Request, login_hint: str = "") -> Response:
    """``login_hint`` (an application's hint, OIDC Core §3.1.2.1) only fills the field."""
    return _signin(request, signed_in_as=_signed_in_email(request), email=login_hint[:254] or None)


def _signin(
    request: Request,
    *,
    status_code: int = 200,
    error: str | None = None,
    email: str | None = None,
    signed_in_as: str | None = None,
) -> Response:
    response = page(
        request,
        "signin.html",
        status_code=status_code,
        error=error,
        email=email,
        signed_in_as=signed_in_as,
        offers_passwords=context.service(request).offers_passwords(),
        passkey_first=oidc_provider(request).asks_for_passkey(
            request.cookies.get(context.cookies(request).authorization)
        ),
    )
    # The page's passkey autofill request and its email form both bind what they start
    # to this cookie: it must exist before either is sent, or the two would each draw a
    # value and the later answer would unbind the other's flow (issue 7, defect 5).
    context.set_binding(request, response, context.binding_for_request(request))
    return response


def _signed_in_email(request: Request) -> str | None:
    """The address of this browser's live session, if any (only read, never made)."""
    session = context.any_session(request)
    return context.service(request).user_of(session).email if session else None


def _unless_signed_in(request: Request, error: SekishoError) -> Response:
    """A spent link or finished flow met again by someone already signed in (a used
    link, Back after signing in, a reload) says so instead of showing an error. It only
    reads the session this browser already has: it never signs anyone in."""
    if error.code is ErrorCode.invalid_or_expired:
        email = _signed_in_email(request)
        if email is not None:
            return page(request, "signed_in.html", email=email)
    raise error


@router.api_route("/signin/password", methods=["GET", "HEAD"])
def password_page(request: Request) -> Response:
    if not context.service(request).offers_passwords():
        return _see_other("/signin")
    return page(request, "password.html", error=None, email=None)


@router.post("/signin/password")
async def password_sign_in(request: Request, form: CheckedForm) -> Response:
    """A coroutine, unlike the other form handlers: the attempt runs in the thread pool
    and the answer then waits for the password floor without holding a thread."""
    email = context.field(form, "email", max_length=1024)
    try:
        issued = await pacing.password_attempt(
            request,
            raw_email=email,
            password=context.field(form, "password", max_length=4096),
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
def request_email(request: Request, form: CheckedForm) -> Response:
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
    return _to_wait_page(request, flow.flow_id, binding)


def _to_wait_page(request: Request, flow_id: str, binding: str, **extra: str) -> Response:
    response = _see_other("/signin/email/wait?" + urlencode({"flow": flow_id, **extra}))
    context.set_binding(request, response, binding)
    return response


@router.post("/signin/email/resend")
def resend_email(request: Request, form: CheckedForm) -> Response:
    """The wait page's "Send a new email": a new request for the same address."""
    binding = context.binding(request)
    if binding is None:
        raise SekishoError(ErrorCode.invalid_or_expired)
    flow = context.service(request).resend_email(
        flow_id=context.field(form, "flow", max_length=64),
        binding=binding,
        client=context.client(request),
    )
    return _to_wait_page(request, flow.flow_id, binding, resent="1")


@router.api_route("/signin/email/wait", methods=["GET", "HEAD"])
def wait_page(request: Request, flow: str = "", resent: str = "") -> Response:
    try:
        return _wait(request, flow, resent=resent == "1")
    except SekishoError as error:
        return _unless_signed_in(request, error)


def _wait(
    request: Request,
    flow_id: str,
    *,
    error: str | None = None,
    attempts_left: int | None = None,
    status_code: int = 200,
    resent: bool = False,
) -> Response:
    sekisho = context.service(request)
    view = sekisho.wait_view(flow_id=flow_id, binding=context.binding(request))
    if view.state not in ("pending", "approved"):
        raise SekishoError(ErrorCode.invalid_or_expired)
    now = sekisho.clock()
    return page(
        request,
        "wait.html",
        status_code=status_code,
        flow_id=flow_id,
        approval_number=view.approval_number,
        masked_email=mask_email(view.email),
        expires_minutes=minutes_left(view.expires_at - now),
        resend_in=sekisho.email.resend_wait(view, now),
        resent=resent,
        mail_delayed=context.mail_delayed(request),
        error=error,
        attempts_left=attempts_left,
    )


CODE_BURNED_HERE = N_(
    "Too many wrong codes: this code no longer works. Open the link in the email on this device, or ask for a new email below."
)


@router.post("/signin/email/code")
def submit_code(request: Request, form: CheckedForm) -> Response:
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
        language = context.locale(request)
        status = error.code.status
        if error.code is ErrorCode.code_attempts_exhausted:
            return _wait(
                request, flow_id, error=gettext(language, CODE_BURNED_HERE), status_code=status
            )
        if error.code not in (ErrorCode.code_incorrect, ErrorCode.invalid_code_format):
            return _unless_signed_in(request, error)
        remaining = error.detail.get("attempts_remaining")
        return _wait(
            request,
            flow_id,
            error=gettext(language, error.code.message),
            attempts_left=remaining if isinstance(remaining, int) else None,
            status_code=status,
        )
    return _signed_in(request, issued)


@router.post("/signin/email/complete")
def complete_approved(request: Request, form: CheckedForm) -> Response:
    try:
        issued = context.service(request).complete_approved(
            flow_id=context.field(form, "flow", max_length=64),
            binding=context.binding(request),
            client=context.client(request),
            previous=context.session_token(request),
        )
    except SekishoError as error:
        return _unless_signed_in(request, error)
    return _signed_in(request, issued)


@router.api_route("/signin/email/link", methods=["GET", "HEAD"])
def link_page(request: Request, token: str = "") -> Response:
    """Only shows a confirmation page: GET and HEAD never spend anything (case 1)."""
    try:
        return _link(request, token[:256])
    except SekishoError as error:
        return _unless_signed_in(request, error)


def _link(
    request: Request, token: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    view = context.service(request).inspect_link(
        token=token, binding=context.binding(request), locale=context.locale(request)
    )
    return page(
        request,
        "link.html",
        status_code=status_code,
        view=view,
        masked_email=mask_email(view.email),
        token=token,
        error=error,
    )


@router.post("/signin/email/link")
def confirm_link(request: Request, form: CheckedForm) -> Response:
    try:
        issued = context.service(request).confirm_link(
            token=context.field(form, "token", max_length=256),
            binding=context.binding(request),
            client=context.client(request),
            previous=context.session_token(request),
        )
    except SekishoError as error:
        return _unless_signed_in(request, error)
    return _signed_in(request, issued)


@router.post("/signin/email/link/code")
def link_code(request: Request, form: CheckedForm) -> Response:
    token = context.field(form, "token", max_length=256)
    try:
        issued = context.service(request).verify_link_code(
            token=token,
            code=context.field(form, "code", max_length=32).strip(),
            client=context.client(request),
            previous=context.session_token(request),
        )
    except SekishoError as error:
        if error.code not in (
            ErrorCode.code_incorrect,
            ErrorCode.invalid_code_format,
            ErrorCode.code_attempts_exhausted,
        ):
            raise
        message = gettext(context.locale(request), error.code.message)
        return _link(request, token, error=message, status_code=error.code.status)
    return _signed_in(request, issued)


@router.post("/signin/email/link/deny")
def deny(request: Request, form: CheckedForm) -> Response:
    """The confirmation page's "This wasn't me": ends the flow (audited)."""
    context.service(request).deny(
        token=context.field(form, "token", max_length=256), client=context.client(request)
    )
    language = context.locale(request)
    return page(
        request,
        "message.html",
        heading=gettext(language, "Sign-in cancelled"),
        text=gettext(
            language,
            "Nobody can sign in with this email now. If you did not ask to sign in, someone typed your address: you need do nothing else.",
        ),
        error_code=None,
        link=None,
        link_text=None,
    )


@router.post("/signin/email/link/approve")
def approve(request: Request, form: CheckedForm) -> Response:
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
def account(
    request: Request, added: str = "", removed: str = "", app_removed: str = ""
) -> Response:
    """The account page. ``added`` names a passkey just registered (passkey.js comes
    back here with its id), which is confirmed and offered a name; ``removed`` confirms
    a removal. Remove buttons follow the same freshness rule the service enforces; a
    recovery session gets its own page (``web/recovery_pages.py``)."""
    session = context.any_session(request)
    if session is None:
        return _see_other("/signin")
    if session.restriction == RESTRICTION_RECOVERY:
        return recovery_pages.recovery_account(request, session, added=added[:64])
    sekisho = context.service(request)
    if session.restricted:
        return _restricted(request, session)
    language = context.locale(request)
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
        view=sekisho.account(session, activity=EVENT_LABELS),
        current=session,
        passkeys=items,
        action_names=action_names,
        added=next((item for item in items if item.id == added[:64]), None),
        removed=removed == "1",
        apps=connected_apps.rows(request, session),
        app_removed=app_removed == "1",
        credential_ids=[base64url(passkey.credential_id) for passkey in passkeys],
        rp_id=sekisho.passkeys.relying_party.rp_id,
        freshness=sekisho.passkeys.freshness(session, passkeys),
        passkeys_full=sekisho.passkeys.at_limit(passkeys),
        recovery=sekisho.recovery.status(session),
        nudge=nudge,
        password_session="pwd" in session.amr,
        describe=lambda item: ClientInfo.of(item.ip, item.user_agent).describe(language),
        signed_in_with=lambda amr, aal: wording.signed_in_with(language, amr, aal),
        method=lambda amr: wording.method_label(language, amr) if amr else "",
        event_label=lambda name: gettext(language, EVENT_LABELS[name]),
    )


def _restricted(request: Request, session: Session) -> Response:
    """The only page a restricted session sees: its tier now needs a passkey the account
    lacks. It adds one, then signs in with it (passkey.js), which issues the full
    session; until then every other page and API answers ``restricted_session``."""
    sekisho = context.service(request)
    user = sekisho.user_of(session)
    return page(
        request,
        "account_restricted.html",
        email=user.email,
        tier=sekisho.completion.policy.tier_for(user),
        enrolled=sekisho.passkeys.enrolled(session),
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
    sekisho = context.service(request)
    if sekisho.recovery.status(session).hold_until is not None:
        raise SekishoError(ErrorCode.recovery_hold)
    tier = sekisho.completion.policy.tier_for(sekisho.user_of(session))
    return page(
        request,
        "account_remove.html",
        passkey=passkey_item(passkey),
        email_signin=tier.email_signin,
    )


@router.post("/account/passkeys/{passkey_id}/rename")
def rename_passkey(request: Request, passkey_id: str, form: CheckedForm) -> Response:
    context.service(request).passkeys.rename(
        context.require_session(request),
        passkey_id[:64],
        context.field(form, "name", max_length=200),
        context.client(request),
    )
    return _see_other("/account")


@router.post("/account/passkeys/{passkey_id}/delete")
def delete_passkey(request: Request, passkey_id: str, _form: CheckedForm) -> Response:
    context.service(request).passkeys.remove(
        context.require_session(request),
        passkey_id[:64],
        locale=context.locale(request),
        client=context.client(request),
    )
    return _see_other("/account?removed=1")


@router.post("/account/nudge/dismiss")
def dismiss_nudge(request: Request, _form: CheckedForm) -> Response:
    response = _see_other("/account")
    jar = context.cookies(request)
    jar.set(response, jar.passkey_nudge, "1", max_age=NUDGE_MAX_AGE)
    return response


@router.post("/signout")
def sign_out(request: Request, _form: CheckedForm) -> Response:
    session = context.any_session(request)
    if session is not None:
        context.service(request).sign_out(session, context.client(request))
    response = _see_other("/signin")
    jar = context.cookies(request)
    jar.clear(response, jar.session)
    return response


@router.post("/account/sessions/revoke-others")
def revoke_others(request: Request, _form: CheckedForm) -> Response:
    context.service(request).revoke_others(
        context.require_session(request), context.client(request)
    )
    return _see_other("/account")


@router.post("/account/sessions/{session_id}/revoke")
def revoke_session(request: Request, session_id: str, _form: CheckedForm) -> Response:
    context.service(request).revoke_session(
        context.require_session(request), session_id, context.client(request)
    )
    return _see_other("/account")
