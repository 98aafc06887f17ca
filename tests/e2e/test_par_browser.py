"""Pushed Authorization Requests (RFC 9126) in a real browser (Debian's Chromium, a CDP
virtual authenticator), with a relying party nobody here wrote: panva's openid-client
in examples/node, for a client registered with ``require_pushed_authorization_requests``
(issue 9; SECURITY.md case 45). The app pushes its request to ``/par`` over the back
channel; the browser reaches ``/authorize`` with only ``client_id`` and the
``request_uri``, signs in on Sekisho's pages, first by the emailed code, then (signed
out of Sekisho) with a passkey; each time the app redeems the code and validates the
ID token itself, and a spent ``request_uri`` shows an error page, never a sign-in."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, Request, expect

from sekisho.oidc.provider import REQUEST_URI_PREFIX
from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_email_signin_browser import request_email
from tests.e2e.test_passkeys_browser import (
    NO_CONDITIONAL_MEDIATION,
    VirtualAuthenticator,
    add_passkey,
)
from tests.support.node_rp import node_app
from tests.support.oidc import query_of
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

pytestmark = pytest.mark.browser


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    """Reached as localhost: the passkey's RP ID must be a domain."""
    return make_server(host_name="localhost")


def _me(page: Page, origin: str) -> dict[str, Any]:
    """What the app established: the ID token's claims it validated, and UserInfo."""
    answer = page.context.request.get(origin + "/me")
    assert answer.ok, answer.text()
    found: dict[str, Any] = answer.json()
    return found


def test_a_pushed_request_signs_in_by_email_code_then_by_passkey(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    address = "pushed@example.com"
    user_id = server.add_user(address)
    with node_app(server, par=True, require_par=True) as (registered, origin):
        page = device()
        page.context.add_init_script(NO_CONDITIONAL_MEDIATION)
        VirtualAuthenticator(page)
        authorizations: list[str] = []

        def seen(request: Request) -> None:
            if request.url.startswith(server.url + "/authorize?"):
                authorizations.append(request.url)

        page.on("request", seen)

        page.goto(origin + "/")
        page.locator("#sign-in").click()
        expect(page).to_have_url(server.url + "/signin")
        (first,) = authorizations
        pushed = query_of(first)
        assert set(pushed) == {"client_id", "request_uri"}
        assert pushed["client_id"] == registered.client_id
        assert pushed["request_uri"].startswith(REQUEST_URI_PREFIX)

        earlier = len(smtp.to(address))
        request_email(page, address)
        _link, code = link_and_code(smtp.wait_for(address, earlier + 1))
        page.locator("#code-form #code").fill(code)  # wait.js submits six digits
        expect(page.locator("#amr")).to_have_text("email")
        expect(page).to_have_url(origin + "/")
        me = _me(page, origin)
        claims = me["claims"]
        assert claims["iss"] == server.settings.public_origin
        assert (claims["sub"], claims["aud"]) == (user_id, registered.client_id)
        assert (claims["amr"], claims["acr"]) == (["email"], "urn:sekisho:acr:aal1")
        assert me["userinfo"] == {"sub": user_id, "email": address, "email_verified": True}

        # The request_uri was spent by its one visit: a page, not a sign-in.
        page.goto(first)
        expect(page.locator('#message[data-error="invalid_request_uri"]')).to_be_visible()

        page.goto(server.url + "/account")
        add_passkey(page)
        page.locator("#signout-form button[type=submit]").click()
        expect(page).to_have_url(server.url + "/signin")

        page.goto(origin + "/login")
        expect(page).to_have_url(server.url + "/signin")
        second = authorizations[-1]
        assert query_of(second)["request_uri"] != pushed["request_uri"]
        page.locator("#passkey-button").click()
        expect(page.locator("#acr")).to_have_text("phr")
        expect(page).to_have_url(origin + "/")
        again = _me(page, origin)["claims"]
        assert again["sub"] == user_id
        assert again["auth_time"] >= claims["auth_time"]
        assert "email" not in again["amr"]
        assert "hwk" in again["amr"]
