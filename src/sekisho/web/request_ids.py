"""Every request gets an id: in the ``X-Request-ID`` response header, in its log lines and
in the audit events it writes (``sekisho.core.request_ids``).

Invariant: an incoming ``X-Request-ID`` is used only when the operator says a proxy in
front sets it (``accept_request_id``) and it is well formed; otherwise Sekisho makes one.
A client can therefore never put its own text into the logs or the audit log.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sekisho.core.request_ids import enter_request, leave_request, well_formed

HEADER = "X-Request-ID"


class RequestIds:
    """Outermost middleware: sets the request's id for everything inside it."""

    def __init__(self, app: ASGIApp, *, accept_header: bool) -> None:
        self.app = app
        self.accept_header = accept_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(HEADER) if self.accept_header else None
        request_id = offered if offered is not None and well_formed(offered) else _new()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        token = enter_request(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            leave_request(token)


def _new() -> str:
    return secrets.token_hex(16)
