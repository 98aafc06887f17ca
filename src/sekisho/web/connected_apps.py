"""The account page's "Connected apps" section: its rows, and the form that takes a
consent back (``oidc/connected_apps.py`` does the work)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sekisho.core.records import Session
from sekisho.i18n import gettext
from sekisho.oidc.authorize import SCOPE_LABELS
from sekisho.oidc.connected_apps import ConnectedApps
from sekisho.web import context
from sekisho.web.context import CheckedForm

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class AppRow:
    client_id: str
    name: str
    scopes: list[str]
    granted_at: datetime


def _service(request: Request) -> ConnectedApps:
    found: ConnectedApps = request.app.state.connected_apps
    return found


def rows(request: Request, session: Session) -> list[AppRow]:
    """The connected apps of the session's person, scopes in the visitor's language."""
    language = context.locale(request)
    return [
        AppRow(
            client_id=app.client_id,
            name=app.name,
            scopes=[
                gettext(language, SCOPE_LABELS[scope]) if scope in SCOPE_LABELS else scope
                for scope in app.scopes
            ],
            granted_at=app.granted_at,
        )
        for app in _service(request).of(session)
    ]


@router.post("/account/apps/{client_id}/revoke")
def revoke(request: Request, client_id: str, _form: CheckedForm) -> Response:
    _service(request).revoke(
        context.require_session(request), client_id[:64], context.client(request)
    )
    return RedirectResponse("/account?app_removed=1", status_code=303)
