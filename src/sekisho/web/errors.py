"""Turning every refusal into a stable code: JSON under /api, a readable page elsewhere.

Invariant: no stack trace or internal detail ever reaches the client; a database that
cannot be reached makes every endpoint fail closed with 503 (SECURITY.md case 43).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import N_, gettext
from sekisho.web import context
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
}

_HTTP_CODES = {
    404: ErrorCode.not_found,
    405: ErrorCode.method_not_allowed,
    413: ErrorCode.payload_too_large,
    415: ErrorCode.unsupported_media_type,
}


def _respond(
    request: Request,
    code: ErrorCode,
    *,
    retry_after: int | None = None,
    detail: dict[str, int | str] | None = None,
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if request.url.path.startswith("/api/") or code is ErrorCode.service_unavailable:
        body: dict[str, object] = {"error": code.name, "message": code.message}
        body.update(detail or {})
        return JSONResponse(body, status_code=code.status, headers=headers)
    language = context.locale(request)
    response = page(
        request,
        "message.html",
        status_code=code.status,
        heading=gettext(language, HEADINGS.get(code, N_("Something stopped this"))),
        text=gettext(language, code.message),
        error_code=code.name,
        link="/signin",
        link_text=gettext(language, "Back to sign-in"),
    )
    response.headers.update(headers)
    return response


async def _sekisho_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, SekishoError)
    return _respond(request, error.code, retry_after=error.retry_after, detail=error.detail)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    if any(item.get("type") == "json_invalid" for item in error.errors()):
        return _respond(request, ErrorCode.invalid_request)
    fields = sorted({str(item.get("loc", ("", ""))[-1]) for item in error.errors()})
    code = ErrorCode.invalid_email if fields == ["email"] else ErrorCode.invalid_field
    return _respond(request, code, detail={"field": ",".join(fields)})


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, ErrorCode.invalid_request)
    return _respond(request, code)


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
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(DBAPIError, _database_down)
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(Exception, _unexpected)
