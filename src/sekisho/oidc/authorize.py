"""The authorization endpoint and its continuation after sign-in and consent
(RFC 6749 §4.1.1-2, OIDC Core §3.1.2, RFC 9207, OAuth 2.0 Form Post Response Mode).

A request that needs a sign-in is stored server-side; this browser's cookie names it,
and Sekisho's own sign-in pages (email link or code, passkey, password bridge) send the
browser back to ``/authorize/resume`` when they finish: also when the email link is
approved on another device, since the waiting browser completes the sign-in.

Answers: from ``GET /authorize`` itself a 303 to the client. After a sign-in or consent
form, browsers apply the submitting page's CSP ``form-action 'self'`` to the whole
redirect chain, so the answer is a page: for ``query`` one that moves on by
``<meta http-equiv="refresh">``, for ``form_post`` an auto-submitting form whose own CSP
allows exactly the client's origin as form target and only Sekisho's static script.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sekisho.i18n import LOCALES, N_, gettext
from sekisho.oidc.discovery import provider
from sekisho.oidc.errors import AuthorizationPageError
from sekisho.oidc.provider import AskConsent, Confirm, Outcome, Respond, SignIn
from sekisho.web import context
from sekisho.web.context import CheckedForm
from sekisho.web.cookies import AUTHORIZATION_MAX_AGE
from sekisho.web.middleware import CONTENT_SECURITY_POLICY
from sekisho.web.params import form_lists, query_lists
from sekisho.web.rendering import page, refusal_page

router = APIRouter(include_in_schema=False)
CONSENT_PURPOSE = "oidc-consent-form"

PAGE_ERRORS = {
    "unknown_client": N_("This application is not registered with Sekisho."),
    "redirect_uri_mismatch": N_(
        "This application asked Sekisho to send you to an address it has not registered. For your safety, Sekisho does not go there."
    ),
    "repeated_parameter": N_("This sign-in request is malformed."),
    "invalid_request_uri": N_(
        "This sign-in request has expired, was already used, or belongs to another application. Go back to the application and start again."
    ),
    "request_expired": N_(
        "This sign-in request has expired or was already used. Go back to the application and start again."
    ),
}
SCOPE_LABELS = {
    "openid": N_("Know who you are (a stable identifier for your account)"),
    "email": N_("See your email address"),
    "profile": N_("See your name"),
    "offline_access": N_("Stay connected while you are signed in to Sekisho"),
}


def _locale_cookie(request: Request, response: Response, ui_locales: tuple[str, ...]) -> None:
    """``ui_locales`` picks the pages' language when this browser has not chosen one."""
    jar = context.cookies(request)
    if ui_locales and jar.language not in request.cookies and ui_locales[0] in LOCALES:
        jar.set(response, jar.language, ui_locales[0])


def _redirect_url(answer: Respond) -> str:
    """The redirect URI with the response added to its query (RFC 6749 §4.1.2; a query
    the URI already has is kept)."""
    separator = "&" if urlsplit(answer.redirect_uri).query else "?"
    return answer.redirect_uri + separator + urlencode(answer.parameters)


def _answer_page(request: Request, answer: Respond) -> Response:
    if answer.response_mode == "form_post":
        parts = urlsplit(answer.redirect_uri)
        response = page(
            request,
            "oidc_form_post.html",
            action=answer.redirect_uri,
            fields=sorted(answer.parameters.items()),
        )
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", f"form-action {parts.scheme}://{parts.netloc}"
        )
        return response
    return page(request, "oidc_continue.html", url=_redirect_url(answer))


def _finish(request: Request, answer: Respond, *, direct: bool) -> Response:
    response: Response
    if direct and answer.response_mode == "query":
        response = RedirectResponse(_redirect_url(answer), status_code=303)
    else:
        response = _answer_page(request, answer)
    if context.cookies(request).authorization in request.cookies:
        context.cookies(request).clear(response, context.cookies(request).authorization)
    return response


def _outcome(request: Request, outcome: Outcome, *, direct: bool) -> Response:
    jar = context.cookies(request)
    if isinstance(outcome, Respond):
        return _finish(request, outcome, direct=direct)
    if isinstance(outcome, SignIn):
        target = "/signin"
        if outcome.login_hint:
            target += "?" + urlencode({"login_hint": outcome.login_hint})
        response: Response = RedirectResponse(target, status_code=303)
        jar.set(response, jar.authorization, outcome.pending, max_age=AUTHORIZATION_MAX_AGE)
        _locale_cookie(request, response, outcome.ui_locales)
        return response
    if isinstance(outcome, Confirm):
        response = RedirectResponse(f"/confirm/{outcome.confirmation_id}", status_code=303)
        jar.set(response, jar.authorization, outcome.pending, max_age=AUTHORIZATION_MAX_AGE)
        _locale_cookie(request, response, outcome.ui_locales)
        return response
    if direct:
        response = RedirectResponse("/authorize/resume", status_code=303)
        jar.set(response, jar.authorization, outcome.pending, max_age=AUTHORIZATION_MAX_AGE)
        _locale_cookie(request, response, outcome.ui_locales)
        return response
    return _consent_page(request, outcome)


def _consent_page(request: Request, outcome: AskConsent) -> Response:
    language = context.locale(request)
    return page(
        request,
        "oidc_consent.html",
        client_name=outcome.client.name,
        scopes=[gettext(language, SCOPE_LABELS[scope]) for scope in outcome.scope],
        request_tag=context.service(request).keys.digest(CONSENT_PURPOSE, outcome.pending)[:32],
    )


def _error_page(request: Request, error: AuthorizationPageError) -> Response:
    return refusal_page(
        request,
        N_("This sign-in cannot continue"),
        PAGE_ERRORS,
        error.reason,
        "repeated_parameter",
    )


def _authorize(request: Request, params: dict[str, list[str]]) -> Response:
    try:
        outcome = provider(request).authorize(
            lambda name: params.get(name, []),
            session=context.session_lookup(request),
            client_info=context.client(request),
        )
    except AuthorizationPageError as error:
        return _error_page(request, error)
    return _outcome(request, outcome, direct=True)


@router.get("/authorize")
def authorize(request: Request) -> Response:
    """GET only: HEAD is refused at the edge (``HEAD_REFUSED``), since this GET may
    store a pending request or mint a code."""
    return _authorize(request, query_lists(request))


@router.post("/authorize")
async def authorize_post(request: Request) -> Response:
    """OIDC Core §3.1.2.1: the same request as a form post (no CSRF token: it comes from
    the client's site by design, and changes nothing before the person acts)."""
    return await run_in_threadpool(_authorize, request, await form_lists(request))


@router.get("/authorize/resume")
def resume(request: Request) -> Response:
    try:
        outcome = provider(request).resume(
            request.cookies.get(context.cookies(request).authorization),
            session=context.current_session(request),
            client_info=context.client(request),
            left_confirmation="confirmation" in request.query_params,
        )
    except AuthorizationPageError as error:
        response = _error_page(request, error)
        context.cookies(request).clear(response, context.cookies(request).authorization)
        return response
    return _outcome(request, outcome, direct=False)


@router.post("/authorize/consent")
def consent(request: Request, form: CheckedForm) -> Response:
    pending = request.cookies.get(context.cookies(request).authorization)
    tag = context.field(form, "request", max_length=64)
    expected = context.service(request).keys.digest(CONSENT_PURPOSE, pending or "")[:32]
    if pending is None or tag != expected:
        return _error_page(request, AuthorizationPageError("request_expired"))
    try:
        outcome = provider(request).consent(
            pending,
            session=context.current_session(request),
            approved=context.field(form, "decision", max_length=16) == "allow",
            client_info=context.client(request),
        )
    except AuthorizationPageError as error:
        return _error_page(request, error)
    if isinstance(outcome, Respond):
        return _finish(request, outcome, direct=False)
    return _outcome(request, outcome, direct=True)
