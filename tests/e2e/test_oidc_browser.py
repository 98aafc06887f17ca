"""The authorization code flow in a real browser (Debian's Chromium through Playwright):
Sekisho's own sign-in pages resume the authorization, the form_post page submits itself
under its strict CSP, and the email link approved on a second device lets the waiting
browser go back to the application (issue 9)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from sekisho.oidc.provider import REQUEST_URI_PREFIX
from tests.e2e.conftest import Device
from tests.e2e.test_accessibility import LINUX_CHROME, LOCALES, PHONE, Findings, check
from tests.e2e.test_email_signin_browser import emailed, open_link_elsewhere, request_email
from tests.e2e.test_passkeys_browser import NO_CONDITIONAL_MEDIATION
from tests.support.oidc import Registered, challenge, exchange, register_client, verify_id_token
from tests.support.relying_party import Callback
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

pytestmark = pytest.mark.browser


def _authorize(page: Page, registered: Registered, callback: Callback, **extra: str) -> None:
    params = {
        "client_id": registered.client_id,
        "redirect_uri": callback.redirect_uri,
        "response_type": "code",
        "scope": "openid email",
        "state": '"><script>alert(1)</script>',
        "nonce": "browser-nonce",
        "code_challenge": challenge(),
        "code_challenge_method": "S256",
        **extra,
    }
    page.goto("/authorize?" + urlencode(params))


def _check_tokens(
    server: LiveServer, registered: Registered, callback: Callback, code: str
) -> None:
    answer = exchange(server, registered, code, redirect_uri=callback.redirect_uri)
    assert answer.status_code == 200, answer.text
    claims = verify_id_token(server, answer.json()["id_token"], client_id=registered.client_id)
    assert claims["nonce"] == "browser-nonce"
    assert claims["amr"] == ["email"]


def test_form_post_after_the_email_code(
    server: LiveServer, smtp: SmtpCapture, device: Device, callback: Callback
) -> None:
    server.add_user("aki@example.com")
    registered = register_client(server, redirect_uris=(callback.redirect_uri,))
    page = device()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    _authorize(page, registered, callback, response_mode="form_post")
    expect(page).to_have_url(server.url + "/signin")
    page.locator("#email").fill("aki@example.com")
    page.locator("#email-form button[type=submit]").click()
    expect(page.locator("#approval-number")).to_be_visible()
    page.wait_for_load_state("load")
    _link, code = emailed(smtp, server, "aki@example.com")
    page.locator("#code-form #code").fill(code)
    method, values = callback.wait()
    assert method == "POST"
    assert values["state"] == '"><script>alert(1)</script>'
    assert values["iss"] == server.settings.public_origin
    expect(page.locator("#rp")).to_be_visible()
    assert not [text for text in console if "Content Security Policy" in text], console
    _check_tokens(server, registered, callback, values["code"])


def test_query_response_after_approval_on_another_device(
    server: LiveServer, smtp: SmtpCapture, device: Device, callback: Callback
) -> None:
    server.add_user("yuki@example.com")
    registered = register_client(server, redirect_uris=(callback.redirect_uri,))
    laptop = device()
    _authorize(laptop, registered, callback)
    expect(laptop).to_have_url(server.url + "/signin")
    request_email(laptop, "yuki@example.com")
    number = laptop.locator("#approval-number").inner_text().strip()
    link, _code = emailed(smtp, server, "yuki@example.com")
    phone = open_link_elsewhere(device, link)
    phone.locator("#approve-form #number").fill(number)
    phone.locator("#approve-form button[type=submit]").click()
    method, values = callback.wait()
    assert method == "GET"
    expect(laptop.locator("#rp")).to_be_visible()
    assert laptop.url.startswith(callback.redirect_uri + "?code=")
    _check_tokens(server, registered, callback, values["code"])


@pytest.mark.parametrize("language", ["en", "ja"])
def test_oidc_pages_are_accessible_and_fit_a_phone(
    server: LiveServer, smtp: SmtpCapture, device: Device, callback: Callback, language: str
) -> None:
    findings = Findings()
    server.add_user("sae@example.com")
    registered = register_client(
        server, redirect_uris=(callback.redirect_uri,), first_party=False, name="Kabu Notes"
    )
    page = device(locale=LOCALES[language], viewport=PHONE, user_agent=LINUX_CHROME)
    page.context.add_init_script(NO_CONDITIONAL_MEDIATION)
    _authorize(page, registered, callback)
    request_email(page, "sae@example.com")
    _link, code = emailed(smtp, server, "sae@example.com")
    page.locator("#code-form #code").fill(code)
    expect(page.locator("#consent-form")).to_be_visible()
    check(page, "consent", findings)
    page.goto("/authorize?client_id=nobody")
    expect(page.locator('#message[data-error="unknown_client"]')).to_be_visible()
    check(page, "authorization error: unknown client", findings)
    _authorize(page, registered, callback, redirect_uri="https://elsewhere.example/callback")
    expect(page.locator('#message[data-error="redirect_uri_mismatch"]')).to_be_visible()
    check(page, "authorization error: unregistered redirect URI", findings)
    spent = urlencode(
        {"client_id": registered.client_id, "request_uri": f"{REQUEST_URI_PREFIX}spent"}
    )
    page.goto(f"/authorize?{spent}")
    expect(page.locator('#message[data-error="invalid_request_uri"]')).to_be_visible()
    check(page, "authorization error: unusable request_uri", findings)
    # form_post.js held back, as if it failed to load: the page's own button remains.
    no_script = device(locale=LOCALES[language], viewport=PHONE, user_agent=LINUX_CHROME)
    no_script.route("**/static/form_post.js", lambda route: route.abort())
    no_script.context.add_cookies(
        [
            {"name": cookie["name"], "value": cookie["value"], "url": server.url}
            for cookie in page.context.cookies()
        ]
    )
    _authorize(no_script, registered, callback, response_mode="form_post", prompt="consent")
    no_script.locator("#allow").click()
    expect(no_script.locator("#form-post button")).to_be_visible()
    check(no_script, "form_post without JavaScript", findings)
    no_script.locator("#form-post button").click()
    assert callback.wait()[0] == "POST"
    findings.assert_none()
