"""Sets the device cookie on the response when the request minted one
(:func:`sekisho.web.context.device`): a random value naming this browser, so a sign-in
from a browser the account has not used before can be told apart (``core/devices.py``).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sekisho.web.context import NEW_DEVICE
from sekisho.web.cookies import DEVICE_MAX_AGE, Cookies


class DeviceCookie:
    def __init__(self, app: ASGIApp, *, cookies: Cookies) -> None:
        self.app = app
        self.cookies = cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = scope.get("state", {}).get(NEW_DEVICE)
                if value is not None:
                    carrier = Response()
                    self.cookies.set(carrier, self.cookies.device, value, max_age=DEVICE_MAX_AGE)
                    headers = MutableHeaders(scope=message)
                    headers.append("set-cookie", carrier.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, with_cookie)
