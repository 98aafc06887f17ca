"""Per-request helpers that need no server: the cookie jar and the browser binding."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from sekisho.web import context
from sekisho.web.cookies import Cookies


def _request(cookie: str) -> Request:
    app = Starlette()
    app.state.cookies = Cookies(secure=False)
    return Request({"type": "http", "app": app, "headers": [(b"cookie", cookie.encode())]})


def test_the_jar_is_the_apps() -> None:
    request = _request("")
    assert context.cookies(request) is request.app.state.cookies


def test_a_binding_sekisho_set_is_kept() -> None:
    request = _request("sekisho_binding=abc-DEF_123")
    assert context.binding_for_request(request) == "abc-DEF_123"


@pytest.mark.parametrize("cookie", ['sekisho_binding="a b"', 'sekisho_binding="a\\"b"', ""])
def test_a_binding_that_could_not_be_set_again_is_replaced(cookie: str) -> None:
    request = _request(cookie)
    value = context.binding_for_request(request)
    assert len(value) == 43
    response = Response()
    context.set_binding(request, response, value)
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    assert jar["sekisho_binding"].value == value
