"""Per-request helpers: the services, the client, the language, cookies, CSRF and input.

CSRF (SECURITY.md case 33, OWASP signed double-submit): every page that carries a form
sets a random CSRF cookie, and the form carries an HMAC of it; a state-changing POST
must present both, and a request whose ``Origin`` (or ``Sec-Fetch-Site``) names another
site is refused before anything else. The JSON API refuses such a request the same way
(403 before its content type is looked at), and then requires ``application/json``, which
a cross-site page cannot send without a CORS preflight that Sekisho never grants.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from sekisho.core import onetime
from sekisho.core.clients import ClientInfo
from sekisho.core.ports import Repositories
from sekisho.core.records import Session
from sekisho.core.recovery import RESTRICTION_RECOVERY
from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import negotiate
from sekisho.service import Sekisho
from sekisho.store.mail_health import MailHealth
from sekisho.web.cookies import BINDING_MAX_AGE, Cookies, is_cookie_value

CSRF_PURPOSE = "csrf"
NEW_DEVICE = "new_device"
DEVICE_MAX_LENGTH = 64
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELD_LENGTH = 4096


# The app's objects are read as ``request.app.state[name]``, not as attributes:
# Starlette's ``State`` keeps them in a dict behind ``__getattr__``, which Python calls
# only after the ordinary lookup has failed and built an ``AttributeError`` (its message
# formatted) to be caught, about 0.6 us a read against 0.1 us. ``cookies`` alone is
# read a dozen times in a sign-in.


def service(request: Request) -> Sekisho:
    app_service: Sekisho = request.app.state["sekisho"]
    return app_service


def mail_delayed(request: Request) -> bool:
    """Whether sign-in email is delayed right now, for every address alike
    (``store/mail_health.py``)."""
    health: MailHealth = request.app.state["mail_health"]
    return health.delayed()


def cookies(request: Request) -> Cookies:
    jar: Cookies = request.app.state["cookies"]
    return jar


def client(request: Request) -> ClientInfo:
    host = request.client.host if request.client else None
    return ClientInfo.of(
        host,
        request.headers.get("user-agent"),
        device=device(request),
        locale=locale(request),
    )


def device(request: Request) -> str:
    """This browser's device cookie value, or a new one that
    :class:`sekisho.web.devices.DeviceCookie` sets on the response."""
    value = request.cookies.get(cookies(request).device)
    if value and len(value) <= DEVICE_MAX_LENGTH:
        return value
    new: str | None = getattr(request.state, NEW_DEVICE, None)
    if new is None:
        new = secrets.token_urlsafe(32)
        setattr(request.state, NEW_DEVICE, new)
    return new


def locale(request: Request) -> str:
    """The visitor's chosen language, else one an OpenID Connect request asked for
    (``ui_locales``, set on ``request.state.ui_locale``), else Accept-Language's."""
    chosen = request.cookies.get(cookies(request).language) or getattr(
        request.state, "ui_locale", None
    )
    return negotiate(request.headers.get("accept-language"), chosen)


def session_token(request: Request) -> str | None:
    return request.cookies.get(cookies(request).session)


def any_session(request: Request) -> Session | None:
    """The live session named by the session cookie, restricted or not: only for the
    few places a restricted session may reach (its account page, adding the passkey its
    tier requires or that completes a recovery, new recovery codes after that, signing
    out)."""
    return service(request).current_session(session_token(request))


def current_session(request: Request) -> Session | None:
    """The live, unrestricted session named by the session cookie, if any; a
    restricted session is refused, never taken for a full one: 403
    ``session_restricted`` after a recovery code, ``restricted_session`` when the
    account's tier wants a passkey it lacks."""
    return unrestricted(any_session(request))


def unrestricted(session: Session | None) -> Session | None:
    """``session`` unless it is restricted (see :func:`current_session`)."""
    if session is not None and session.restricted:
        if session.restriction == RESTRICTION_RECOVERY:
            raise SekishoError(ErrorCode.session_restricted)
        raise SekishoError(ErrorCode.restricted_session)
    return session


def session_lookup(request: Request) -> Callable[[Repositories, datetime], Session | None]:
    """The browser's live, unrestricted session (as :func:`current_session`), looked up
    by the caller inside its own transaction (one transaction for both, not two)."""
    token = session_token(request)
    sessions = service(request).sessions

    def lookup(repos: Repositories, now: datetime) -> Session | None:
        return unrestricted(sessions.current(repos, token, now=now))

    return lookup


def require_session(request: Request) -> Session:
    session = current_session(request)
    if session is None:
        raise SekishoError(ErrorCode.not_authenticated)
    return session


def require_any_session(request: Request) -> Session:
    """A live session, restricted or not (see :func:`any_session`)."""
    session = any_session(request)
    if session is None:
        raise SekishoError(ErrorCode.not_authenticated)
    return session


def after_sign_in(request: Request) -> str:
    """Where a completed sign-in goes: back to the authorization request this browser
    signs in for (an application waiting on Sekisho), or to the transaction
    confirmation it was asked for, else the account page."""
    if request.cookies.get(cookies(request).authorization):
        return "/authorize/resume"
    confirmation = request.cookies.get(cookies(request).confirmation, "")
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", confirmation):
        return f"/confirm/{confirmation}"
    return "/account"


def binding(request: Request) -> str | None:
    return request.cookies.get(cookies(request).binding)


def check_origin(request: Request) -> None:
    """Refuse a state-changing request that says it comes from another site.

    Pages are served with ``Referrer-Policy: no-referrer``, under which browsers send
    ``Origin: null`` with same-origin form posts (Fetch standard, "serializing a request
    origin"); ``null`` is therefore accepted unless ``Sec-Fetch-Site`` (which pages
    cannot forge) names another site, and the CSRF token is still required.
    """
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        raise SekishoError(ErrorCode.csrf_failed)
    origin = request.headers.get("origin")
    if origin not in (None, "null", service(request).settings.public_origin):
        raise SekishoError(ErrorCode.csrf_failed)


def csrf_token(request: Request) -> str:
    """The form token for this browser, creating its CSRF cookie on first use."""
    value = request.cookies.get(cookies(request).csrf) or getattr(request.state, "new_csrf", None)
    if value is None:
        value = secrets.token_urlsafe(32)
        request.state.new_csrf = value
    return service(request).keys.digest(CSRF_PURPOSE, value)


def attach_new_csrf(request: Request, response: Response) -> None:
    value = getattr(request.state, "new_csrf", None)
    if value is not None:
        cookies(request).set(response, cookies(request).csrf, value)


def verify_csrf(request: Request, form: FormData) -> None:
    cookie_value = request.cookies.get(cookies(request).csrf)
    tokens = form.getlist("csrf_token")
    if not cookie_value or len(tokens) != 1 or not isinstance(tokens[0], str):
        raise SekishoError(ErrorCode.csrf_failed)
    if not service(request).keys.matches(CSRF_PURPOSE, cookie_value, tokens[0]):
        raise SekishoError(ErrorCode.csrf_failed)


async def read_form(request: Request) -> FormData:
    """A url-encoded form with a valid CSRF token, or a clear 4xx."""
    check_origin(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise SekishoError(ErrorCode.unsupported_media_type)
    form = await request.form()
    verify_csrf(request, form)
    return form


CheckedForm = Annotated[FormData, Depends(read_form)]
"""A page handler's form, read and CSRF-checked on the event loop before the handler runs.

Handlers that take it are plain ``def`` functions, which FastAPI runs in its thread
pool: database work, argon2 and template rendering never block the event loop, and one
slow request cannot stall the others of its process.
"""


def field(form: FormData, name: str, *, max_length: int = MAX_FIELD_LENGTH) -> str:
    """Exactly one text value for ``name`` (arrays and repeats are refused: case 8),
    without NUL (no store keeps it)."""
    values = form.getlist(name)
    if (
        len(values) != 1
        or not isinstance(values[0], str)
        or len(values[0]) > max_length
        or "\x00" in values[0]
    ):
        raise SekishoError(ErrorCode.invalid_field, detail={"field": name})
    return values[0]


async def require_json(request: Request) -> None:
    """API guard: never from another site's page, and JSON bodies only.

    The origin is checked first, so a cross-site request is always 403 ``csrf_failed``,
    whatever content type it sends (case 33). ``async`` though it awaits nothing, so
    FastAPI does not hop to the thread pool for it."""
    check_json(request)


def check_json(request: Request) -> None:
    """:func:`require_json`'s check, for a caller already on a thread
    (:class:`sekisho.web.lean_route.LeanRoute`)."""
    check_origin(request)
    if not is_json_type(request.headers.get("content-type")):
        raise SekishoError(ErrorCode.unsupported_media_type)


def is_json_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` header names ``application/json`` (any parameters,
    any case), as both :func:`require_json` and FastAPI's body reader see it."""
    return (
        content_type is not None
        and content_type.split(";")[0].strip().lower() == "application/json"
    )


def binding_for_request(request: Request) -> str:
    """This browser's binding value, or a new one. Either way the caller sets it again
    with :func:`set_binding`, so it lives a full day after every sign-in request. A value
    that is not all cookie-octets (Sekisho never set it) is replaced, since it could not
    be set again as it is."""
    value = binding(request)
    if value and is_cookie_value(value):
        return value
    return onetime.new_binding()


def set_binding(request: Request, response: Response, value: str) -> None:
    cookies(request).set(response, cookies(request).binding, value, max_age=BINDING_MAX_AGE)
