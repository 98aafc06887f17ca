"""The sign-in page reached from an authorization request whose ``acr_values`` only a
passkey meets: it says so, in English and Japanese, and offers the passkey before the
email form; any other request leaves the page as it is (issue 9)."""

from __future__ import annotations

import httpx

from tests.support.authenticator import SoftAuthenticator
from tests.support.oidc import authorize_url, register_client
from tests.support.passkeys import email_sign_in, register
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

AAL1 = "urn:sekisho:acr:aal1"
NOTICE = 'id="passkey-required"'


def _passkey_first(page: httpx.Response) -> bool:
    assert page.status_code == 200, page.text
    first = page.text.index('id="passkey-signin"') < page.text.index('id="email-form"')
    assert first == (NOTICE in page.text)
    return first


def test_a_request_for_a_passkey_puts_the_passkey_first(server: LiveServer) -> None:
    registered = register_client(server)
    with httpx.Client(base_url=server.url) as browser:
        assert not _passkey_first(browser.get("/signin"))
        asked = browser.get(authorize_url(registered.client_id, acr_values="phr"))
        assert asked.headers["location"] == "/signin"
        page = browser.get("/signin")
        assert _passkey_first(page)
        assert "asks you to sign in with a passkey" in page.text
        assert "autofocus" not in page.text
        japanese = browser.get("/signin", headers={"Accept-Language": "ja"})
        assert _passkey_first(japanese)
        assert "パスキーでのサインインを求めています" in japanese.text

    for acr_values in (AAL1, f"phr {AAL1}", "urn:example:unknown"):
        with httpx.Client(base_url=server.url) as browser:
            asked = browser.get(authorize_url(registered.client_id, acr_values=acr_values))
            assert asked.headers["location"] == "/signin"
            assert not _passkey_first(browser.get("/signin")), acr_values


def test_a_step_up_from_an_email_session_puts_the_passkey_first(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("emi@example.com")
    registered = register_client(server)
    with httpx.Client(base_url=server.url) as browser:
        email_sign_in(server, smtp, browser, "emi@example.com")
        assert register(server, browser, SoftAuthenticator()).status_code == 201
        asked = browser.get(authorize_url(registered.client_id, acr_values="phrh phr"))
        assert asked.headers["location"] == "/signin"
        assert _passkey_first(browser.get("/signin"))
        # the request answered (here: refused after an email sign-in), the page is plain again
        email_sign_in(server, smtp, browser, "emi@example.com")
        assert browser.get("/authorize/resume").status_code == 200
        assert not _passkey_first(browser.get("/signin"))
