"""Rendering pages in the visitor's language, with the CSRF cookie when one was minted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from sekisho.i18n import LOCALES, gettext, jinja_environment
from sekisho.web import context


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    language = context.locale(request)
    environment = jinja_environment("web/templates", language)
    body = environment.get_template(template).render(
        request_path=request.url.path,
        csrf_token=context.csrf_token(request),
        locales=LOCALES,
        development=context.service(request).settings.development,
        after_sign_in=context.after_sign_in(request),
        **values,
    )
    response = HTMLResponse(body, status_code=status_code)
    context.attach_new_csrf(request, response)
    return response


def refusal_page(
    request: Request,
    heading: str,
    reasons: Mapping[str, str],
    reason: str,
    fallback: str,
    *,
    onwards: tuple[str, str] | None = None,
) -> HTMLResponse:
    """A 400 page for a request refused where no redirect can be trusted: ``heading`` and
    the message of ``reason`` (``fallback``'s when it has none), both message ids shown in
    the reader's language, the reason as the error code, and a link onwards only when
    ``onwards`` names one (a local path and its message id)."""
    language = context.locale(request)
    return page(
        request,
        "message.html",
        status_code=400,
        heading=gettext(language, heading),
        text=gettext(language, reasons.get(reason, reasons[fallback])),
        error_code=reason,
        link=onwards[0] if onwards else None,
        link_text=gettext(language, onwards[1]) if onwards else None,
    )
