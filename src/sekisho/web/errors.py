"""Turning every refusal into a stable code: JSON under /api, a readable page elsewhere.

Invariant: no stack trace or internal detail ever reaches the client; a database that
cannot be reached makes every endpoint fail closed with 503 (SECURITY.md case 43), but
a value the database refuses (``DataError``: a NUL in text, a number out of range) is
the client's bad input, 400, never a false outage.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import N_, gettext
from sekisho.web import context
from sekisho.web.middleware import HEAD_REFUSED
from sekisho.web.rendering import page

log = logging.getLogger("sekisho.web")

# What the error page's heading says happened (its text says what to do next).
HEADINGS = {
    ErrorCode.not_found: N_("Page not found"),
    ErrorCode.rate_limited: N_("Too many attempts"),
    ErrorCode.invalid_or_expired: N_("This link or code no longer works"),
    ErrorCode.code_attempts_exhausted: N_("Too many wrong codes"),
    ErrorCode.csrf_failed: N_("This form has expired"),
    ErrorCode.other_browser: N_("Started in another browser"),
    ErrorCode.approval_refused: N_("The number did not match"),
    ErrorCode.not_authenticated: N_("You are not signed in"),
    ErrorCode.operator_passkey_required: N_("Sign in with a passkey"),
    ErrorCode.session_restricted: N_("Add a passkey first"),
    ErrorCode.recovery_hold: N_("On hold after a recovery"),
}

#: Refusals of a signed-in session: the way on is its account page (where a restricted
#: session adds its passkey, and a hold shows until when), not the sign-in page.
_TO_ACCOUNT = frozenset(
    {ErrorCode.session_restricted, ErrorCode.restricted_session, ErrorCode.recovery_hold}
)

_HTTP_CODES = {
    404: ErrorCode.not_found,
    405: ErrorCode.method_not_allowed,
    408: ErrorCode.request_timeout,
    413: ErrorCode.payload_too_large,
    415: ErrorCode.unsupported_media_type,
}
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: Validation failures of one well-known field have a code of their own.
_FIELD_CODES: dict[tuple[str, ...], ErrorCode] = {
    ("email",): ErrorCode.invalid_email,
    ("code",): ErrorCode.invalid_code_format,
}


async def refuse_at_edge(scope: Scope, receive: Receive, send: Send, code: ErrorCode) -> None:
    """The edge's own refusals, answered like every other (JSON under ``/api/``, a page
    elsewhere): 400 ``invalid_request`` for a NUL in the path or the query string
    (:func:`sekisho.web.params.carries_nul`), 413 ``payload_too_large`` for a body over
    the cap, which also closes the connection (the rest of the body is never read)."""
    headers = {"Connection": "close"} if code is ErrorCode.payload_too_large else None
    await _respond(Request(scope, receive), code, headers=headers)(scope, receive, send)


def _respond(
    request: Request,
    code: ErrorCode,
    *,
    retry_after: int | None = None,
    detail: dict[str, int | str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    headers = dict(headers or {})
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    if request.url.path.startswith("/api/") or code is ErrorCode.service_unavailable:
        body: dict[str, object] = {"error": code.name, "message": code.message}
        body.update(detail or {})
        return JSONResponse(body, status_code=code.status, headers=headers)
    language = context.locale(request)
    to_account = code in _TO_ACCOUNT
    response = page(
        request,
        "message.html",
        status_code=code.status,
        heading=gettext(language, HEADINGS.get(code, N_("Something stopped this"))),
        text=gettext(language, code.message),
        error_code=code.name,
        link="/account" if to_account else "/signin",
        link_text=(
            gettext(language, "Continue to your account")
            if to_account
            else gettext(language, "Back to sign-in")
        ),
    )
    response.headers.update(headers)
    return response


#: RFC 6750 §3 challenges for the admin API's bearer refusals.
_BEARER_ERRORS = {
    ErrorCode.api_key_invalid: "invalid_token",
    ErrorCode.insufficient_scope: "insufficient_scope",
    ErrorCode.access_token_invalid: "invalid_token",
    ErrorCode.insufficient_user_authentication: "insufficient_user_authentication",
}


def _bearer_challenge(code: ErrorCode, detail: dict[str, int | str]) -> dict[str, str]:
    """RFC 6750 §3, with RFC 9470 §3's ``acr_values`` and ``max_age`` for a step-up."""
    if code is ErrorCode.client_authentication_failed:
        return {"WWW-Authenticate": 'Basic realm="sekisho"'}
    bearer_error = _BEARER_ERRORS.get(code)
    if bearer_error is None:
        return {}
    challenge = f'Bearer realm="sekisho", error="{bearer_error}"'
    if "scope" in detail:
        challenge += f', scope="{detail["scope"]}"'
    if "acr_values" in detail:
        challenge += f', acr_values="{detail["acr_values"]}"'
    if "max_age" in detail:
        challenge += f", max_age={int(detail['max_age'])}"
    return {"WWW-Authenticate": challenge}


async def _sekisho_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, SekishoError)
    return _respond(
        request,
        error.code,
        retry_after=error.retry_after,
        detail=error.detail,
        headers=_bearer_challenge(error.code, error.detail),
    )


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    if any(item.get("type") == "json_invalid" for item in error.errors()):
        return _respond(request, ErrorCode.invalid_request)
    fields = sorted({str(item.get("loc", ("", ""))[-1]) for item in error.errors()})
    code = _FIELD_CODES.get(tuple(fields), ErrorCode.invalid_field)
    return _respond(request, code, detail={"field": ",".join(fields)})


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's and FastAPI's refusals; a 405 names every method the path has
    (RFC 9110 §15.5.6), HEAD included wherever GET is, except where the edge refuses
    it (see :class:`sekisho.web.middleware.Edge`)."""
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, ErrorCode.invalid_request)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return _respond(request, code, headers=headers)


def _allowed_methods(request: Request) -> str:
    """The methods some route fully matches for this path (the router itself only
    reports the first route that matched the path)."""
    methods = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    if "GET" in methods and request.url.path not in HEAD_REFUSED:
        methods.insert(methods.index("GET") + 1, "HEAD")
    return ", ".join(methods)


async def _bad_value(request: Request, error: Exception) -> Response:
    log.warning("database refused a value: %s", type(error).__name__)
    return _respond(request, ErrorCode.invalid_request)


async def _database_down(request: Request, error: Exception) -> Response:
    log.error("database unavailable: %s", type(error).__name__)
    return _respond(request, ErrorCode.service_unavailable)


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _respond(request, ErrorCode.internal_error)


def install(app: FastAPI) -> None:
    app.add_exception_handler(SekishoError, _sekisho_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(DataError, _bad_value)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(DBAPIError, _database_down)
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(Exception, _unexpected)
