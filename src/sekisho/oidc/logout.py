"""The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0 §2-§3) and its
confirmation form. The checks and the ending are :mod:`sekisho.oidc.end_session`'s;
this module only translates HTTP.

A request that provably comes from the person's client (an ``id_token_hint`` naming
this session) ends the session and gets a 303 to the registered
``post_logout_redirect_uri`` with ``state``. Any other asks first; after the
confirmation form the answer is a page that moves on by ``<meta http-equiv="refresh">``,
since browsers apply the form page's CSP ``form-action 'self'`` to its redirects.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sekisho.i18n import N_, gettext
from sekisho.oidc.discovery import provider
from sekisho.oidc.end_session import (
    MAX_PARAMETER,
    Confirm,
    Ended,
    EndSession,
    LogoutPageError,
    LogoutRequest,
)
from sekisho.web import context
from sekisho.web.context import CheckedForm
from sekisho.web.middleware import HEAD_REQUEST
from sekisho.web.params import form_lists, query_lists
from sekisho.web.rendering import page, refusal_page

router = APIRouter(include_in_schema=False)

PAGE_ERRORS = {
    "unknown_client": N_("This application is not registered with Sekisho."),
    "post_logout_redirect_uri_mismatch": N_(
        "This application asked Sekisho to send you to an address it has not registered. For your safety, Sekisho does not go there."
    ),
    "invalid_id_token_hint": N_(
        "This sign-out request does not come with a valid token from Sekisho."
    ),
    "client_mismatch": N_("This sign-out request names two different applications."),
    "id_token_hint_mismatch": N_(
        "This sign-out request is for a different account from the one signed in here. You are still signed in."
    ),
    "repeated_parameter": N_("This sign-out request is malformed."),
    "invalid_request": N_("This sign-out request is malformed."),
}


def _ending(request: Request) -> EndSession:
    return EndSession(provider(request))


def _error_page(request: Request, error: LogoutPageError) -> Response:
    """The refusal; when it leaves the person signed in, the way on is their account."""
    still_signed_in = error.reason == "id_token_hint_mismatch"
    return refusal_page(
        request,
        N_("This sign-out cannot continue"),
        PAGE_ERRORS,
        error.reason,
        "invalid_request",
        onwards=("/account", N_("Go to your account")) if still_signed_in else None,
    )


def _target(ended: Ended) -> str | None:
    """The registered URI with ``state`` added to its query (§3)."""
    if ended.redirect is None:
        return None
    if ended.state is None:
        return ended.redirect
    separator = "&" if urlsplit(ended.redirect).query else "?"
    return ended.redirect + separator + urlencode({"state": ended.state})


def _signed_out_page(request: Request) -> Response:
    language = context.locale(request)
    return page(
        request,
        "message.html",
        heading=gettext(language, "You have signed out"),
        text=gettext(language, "Your Sekisho session on this device has ended."),
        error_code=None,
        link="/signin",
        link_text=gettext(language, "Sign in again"),
    )


def _settled(request: Request, ended: Ended, *, direct: bool) -> Response:
    target = _target(ended)
    response: Response
    if target is None:
        response = _signed_out_page(request)
    elif direct:
        response = RedirectResponse(target, status_code=303)
    else:
        response = page(request, "oidc_continue.html", url=target)
    if ended.ended:
        jar = context.cookies(request)
        jar.clear(response, jar.session)
    return response


def _confirm_page(request: Request, logout: LogoutRequest) -> Response:
    return page(
        request,
        "oidc_logout.html",
        client_name=logout.client.name if logout.client else None,
        client_id=logout.client.id if logout.client else "",
        post_logout_redirect_uri=logout.post_logout_redirect_uri or "",
        state=logout.state or "",
    )


def _end_session(request: Request, params: dict[str, list[str]]) -> Response:
    ending = _ending(request)
    try:
        logout = ending.check(lambda name: params.get(name, []))
        if logout.ui_locales:
            request.state.ui_locale = logout.ui_locales[0]
        if request.scope.get(HEAD_REQUEST):  # safe by definition (RFC 9110 §9.2.1)
            return _confirm_page(request, logout)
        outcome = ending.decide(
            logout, session=context.any_session(request), client_info=context.client(request)
        )
    except LogoutPageError as error:
        return _error_page(request, error)
    if isinstance(outcome, Confirm):
        return _confirm_page(request, outcome.request)
    return _settled(request, outcome, direct=True)


@router.api_route("/logout", methods=["GET", "HEAD"])
def end_session(request: Request) -> Response:
    return _end_session(request, query_lists(request))


@router.post("/logout")
async def end_session_post(request: Request) -> Response:
    """§2: the same request as a form post (no CSRF token: it comes from the client's
    site by design; without proof it only shows the confirmation page)."""
    return await run_in_threadpool(_end_session, request, await form_lists(request))


@router.post("/logout/confirm")
def confirm(request: Request, form: CheckedForm) -> Response:
    """The person confirmed: the request is checked again (the form is only a carrier)
    and the session ends."""
    params = {
        name: [context.field(form, name, max_length=MAX_PARAMETER)]
        for name in ("client_id", "post_logout_redirect_uri", "state")
    }
    ending = _ending(request)
    try:
        logout = ending.check(lambda name: params.get(name, []))
        ended = ending.decide(
            logout,
            session=context.any_session(request),
            client_info=context.client(request),
            confirmed=True,
        )
    except LogoutPageError as error:
        return _error_page(request, error)
    assert isinstance(ended, Ended)
    return _settled(request, ended, direct=False)
