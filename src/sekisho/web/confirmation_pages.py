"""The confirmation page (``/confirm/{id}``): the details an application asked the
person to confirm, in their language (amounts formatted for it), and the passkey
button (``static/confirm.js``). Shown only to the signed-in person it is for; anyone
else sees the same page as for an unknown id; a signed-out browser signs in first and
comes back.
"""

from __future__ import annotations

import re
from decimal import Decimal

from babel.numbers import format_currency, format_decimal, get_currency_name
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import N_, gettext
from sekisho.policy.actions import Action
from sekisho.web import context
from sekisho.web.confirmations_api import return_url, service
from sekisho.web.cookies import CONFIRMATION_MAX_AGE
from sekisho.web.params import IDENTIFIER
from sekisho.web.rendering import page

router = APIRouter(include_in_schema=False)

# Translators: a currency code and its name, e.g. "JPY (Japanese Yen)"; Japanese puts
# the name first and the code in full-width brackets.
CURRENCY = N_("%(code)s (%(name)s)")


def rows(action: Action, details: dict[str, str | int], language: str) -> list[tuple[str, str]]:
    """Each declared field's label and value as the reader's language writes it."""
    shown = []
    for field in action.fields:
        value = details[field.name]
        if field.type == "amount" and field.currency is not None:
            text = format_currency(
                Decimal(str(value)), str(details[field.currency]), locale=language
            )
        elif field.type == "currency":
            name = get_currency_name(str(value), locale=language)
            text = gettext(language, CURRENCY, code=value, name=name)
        elif field.type == "integer":
            text = format_decimal(value, locale=language)
        else:
            text = str(value)
        shown.append((field.label[language], text))
    return shown


@router.api_route("/confirm/{confirmation_id}", methods=["GET", "HEAD"])
def confirmation_page(request: Request, confirmation_id: str) -> Response:
    """Signed out: to the sign-in page, which comes back here (a cookie names only the
    id, so the way back never leaves this page's path)."""
    if not re.fullmatch(IDENTIFIER, confirmation_id):
        raise SekishoError(ErrorCode.confirmation_unknown)
    jar = context.cookies(request)
    session = context.current_session(request)
    if session is None:
        response: Response = RedirectResponse("/signin", status_code=303)
        jar.set(response, jar.confirmation, confirmation_id, max_age=CONFIRMATION_MAX_AGE)
        return response
    language = context.locale(request)
    view = service(request).page(confirmation_id, session)
    title = view.action.title[language]
    cancel = return_url(view.confirmation)
    response = page(
        request,
        "confirm.html",
        title=title,
        client_name=view.client_name,
        rows=rows(view.action, view.confirmation.details, language),
        status=view.status,
        can_confirm=view.can_confirm,
        confirmation_id=view.confirmation.id,
        cancel_url=cancel,
    )
    context.set_binding(request, response, context.binding_for_request(request))
    if jar.confirmation in request.cookies:
        jar.clear(response, jar.confirmation)
    return response
