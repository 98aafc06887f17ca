"""The device cookie's ``Set-Cookie`` header, for a response whose request minted one
(:func:`sekisho.web.context.device`): a random value naming this browser, so a sign-in
from a browser the account has not used before can be told apart (``core/devices.py``).
The edge (:class:`sekisho.web.middleware.Edge`) adds it when the response starts; it was
a middleware of its own, a coroutine frame and a ``send`` wrapper on every request.
"""

from __future__ import annotations

from starlette.types import Scope

from sekisho.web.context import NEW_DEVICE
from sekisho.web.cookies import DEVICE_MAX_AGE, Cookies


class DeviceCookie:
    def __init__(self, cookies: Cookies) -> None:
        self.cookies = cookies

    def __call__(self, scope: Scope) -> tuple[bytes, bytes] | None:
        """The ``Set-Cookie`` header for the device id this request minted, if it did."""
        value = scope.get("state", {}).get(NEW_DEVICE)
        if value is None:
            return None
        return b"set-cookie", self.cookies.header(
            self.cookies.device, value, max_age=DEVICE_MAX_AGE
        )
