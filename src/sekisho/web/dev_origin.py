"""Development only: one address for the server, the public origin.

A newcomer who opens http://127.0.0.1:8000 while the public origin is
http://localhost:8000 gets sign-in links for the other name (so the browser counts as
another device) and passkeys that fail (the relying party is ``localhost``). A request
that reached this server on the public origin's port under another host name is sent
to the public origin instead: a GET or HEAD is redirected (307) to the same path there,
any other method is refused with 421 ``wrong_origin`` and a link there. The location is
built from the configured origin only, never from the request's Host header.

A request on another port is left alone: the public origin is then something in front
of this server (a proxy, a tunnel), not another name for it. Health checks are left
alone too.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sekisho.errors import ErrorCode
from sekisho.i18n import gettext
from sekisho.web import context
from sekisho.web.rendering import page

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
LEFT_ALONE = frozenset({"/healthz", "/readyz"})


@functools.lru_cache(maxsize=64)
def _split_host(host: str, scheme: str) -> tuple[str, int] | None:
    """A Host header's name (lower case) and port, the scheme's port when none is given.
    Cached: every request asks, almost always with the same few values."""
    try:
        parts = urlsplit(f"//{host}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port or DEFAULT_PORTS.get(scheme, 80)


class DevelopmentOrigin:
    def __init__(self, app: ASGIApp, *, public_origin: str) -> None:
        self.app = app
        self.origin = public_origin
        parts = urlsplit(public_origin)
        self.host = str(parts.hostname).lower()
        self.port = parts.port or DEFAULT_PORTS[parts.scheme]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in LEFT_ALONE or not self._elsewhere(scope):
            await self.app(scope, receive, send)
            return
        response = (
            self._redirect(scope) if scope["method"] in ("GET", "HEAD") else self._refuse(scope)
        )
        await response(scope, receive, send)

    def _elsewhere(self, scope: Scope) -> bool:
        """The request reached this port under a host name other than the origin's."""
        host = next((value for name, value in scope["headers"] if name == b"host"), b"")
        reached = _split_host(host.decode("latin-1"), str(scope["scheme"]))
        return reached is not None and reached[1] == self.port and reached[0] != self.host

    def _redirect(self, scope: Scope) -> Response:
        path = scope.get("raw_path") or scope["path"].encode()
        location = self.origin + path.decode("latin-1")
        if scope.get("query_string"):
            location += "?" + scope["query_string"].decode("latin-1")
        return RedirectResponse(location, status_code=307)

    def _refuse(self, scope: Scope) -> Response:
        code = ErrorCode.wrong_origin
        if scope["path"].startswith("/api/"):
            body = {"error": code.name, "message": code.message, "origin": self.origin}
            return JSONResponse(body, status_code=code.status)
        request = Request(scope)
        language = context.locale(request)
        return page(
            request,
            "message.html",
            status_code=code.status,
            heading=gettext(language, "Something stopped this"),
            text=gettext(language, code.message),
            error_code=code.name,
            link=f"{self.origin}/signin",
            link_text=self.origin,
        )
