"""Connected apps and the sign-out confirmation in a real browser (Debian's Chromium
through Playwright), in English and Japanese on a 375 px phone: the app a person allowed
is listed with what it may do, its access is removed with one labelled button, and a
logout request without proof of this session (none, or an ID token of another session)
asks before signing out, and one for another account or an unregistered address is
refused on a page. Each page is scanned with axe."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Device
from tests.e2e.test_accessibility import LINUX_CHROME, LOCALES, PHONE, Findings, check
from tests.e2e.test_email_signin_browser import emailed, request_email
from tests.e2e.test_passkeys_browser import NO_CONDITIONAL_MEDIATION
from tests.support.browser import FormBrowser
from tests.support.oidc import challenge, code_for, exchange, register_client, sign_in_by_code
from tests.support.relying_party import Callback
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

pytestmark = pytest.mark.browser

WORDS = {
    "en": {
        "remove": "Remove access of Kabu Notes",
        "scope": "See your email address",
        "heading": "Connected apps",
    },
    "ja": {
        "remove": "Kabu Notes のアクセスを取り消す",
        "scope": "メールアドレスを見る",
        "heading": "連携しているアプリケーション",
    },
}


def _allow(
    page: Page, client_id: str, callback: Callback, smtp: SmtpCapture, server: LiveServer
) -> None:
    """Sign in through the authorization request and allow the app."""
    params = {
        "client_id": client_id,
        "redirect_uri": callback.redirect_uri,
        "response_type": "code",
        "scope": "openid email",
        "state": "s",
        "code_challenge": challenge(),
        "code_challenge_method": "S256",
    }
    page.goto("/authorize?" + urlencode(params))
    request_email(page, "aoi@example.com")
    _link, code = emailed(smtp, server, "aoi@example.com")
    page.locator("#code-form #code").fill(code)
    expect(page.locator("#consent-form")).to_be_visible()
    page.locator("#allow").click()
    page.wait_for_url(callback.redirect_uri + "?*")
    assert callback.wait()[0] == "GET"


def _id_token(server: LiveServer, smtp: SmtpCapture, address: str) -> str:
    """An ID token for ``address`` from a session of its own, in another browser, from
    the first-party client "Kabu Bank"."""
    bank = register_client(server, name="Kabu Bank")
    browser = FormBrowser(server.url)
    try:
        sign_in_by_code(browser, smtp, address)
        tokens = exchange(server, bank, code_for(browser, bank.client_id))
    finally:
        browser.close()
    assert tokens.status_code == 200, tokens.text
    return str(tokens.json()["id_token"])


@pytest.mark.parametrize("language", ["en", "ja"])
def test_connected_apps_and_the_logout_confirmation(
    server: LiveServer, smtp: SmtpCapture, device: Device, callback: Callback, language: str
) -> None:
    findings = Findings()
    words = WORDS[language]
    server.add_user("aoi@example.com")
    registered = register_client(
        server, redirect_uris=(callback.redirect_uri,), first_party=False, name="Kabu Notes"
    )
    page = device(locale=LOCALES[language], viewport=PHONE, user_agent=LINUX_CHROME)
    page.context.add_init_script(NO_CONDITIONAL_MEDIATION)
    _allow(page, registered.client_id, callback, smtp, server)

    page.goto("/account")
    expect(page.get_by_role("heading", name=words["heading"])).to_be_visible()
    row = page.locator(f'tr.app[data-client-id="{registered.client_id}"]')
    expect(row).to_contain_text("Kabu Notes")
    expect(row).to_contain_text(words["scope"])
    check(page, "account with a connected app", findings)

    page.get_by_role("button", name=words["remove"]).click()
    expect(page.locator("#app-removed")).to_be_visible()
    expect(page.locator("#no-apps")).to_be_visible()
    check(page, "account after removing an app", findings)

    # Logout requests that do not prove this session: a hint from another session of
    # the same person and a bare request ask first; a hint for someone else is refused.
    page.goto("/logout?" + urlencode({"id_token_hint": _id_token(server, smtp, "aoi@example.com")}))
    expect(page.locator("#logout-form")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Kabu Bank")
    check(page, "logout confirmation for another session's hint", findings)
    page.goto("/logout")
    expect(page.locator("#logout-form")).to_be_visible()
    check(page, "logout confirmation from an unnamed site", findings)
    server.add_user("ren@example.com")
    page.goto("/logout?" + urlencode({"id_token_hint": _id_token(server, smtp, "ren@example.com")}))
    expect(page.locator('#message[data-error="id_token_hint_mismatch"]')).to_be_visible()
    expect(page.locator('main a[href="/account"]')).to_be_visible()  # still signed in
    check(page, "logout refused for another account", findings)
    page.goto(
        "/logout?"
        + urlencode(
            {
                "client_id": registered.client_id,
                "post_logout_redirect_uri": "https://elsewhere.example/",
            }
        )
    )
    expect(page.locator('#message[data-error="post_logout_redirect_uri_mismatch"]')).to_be_visible()
    check(page, "logout refused for an unregistered address", findings)

    page.goto("/logout?" + urlencode({"client_id": registered.client_id}))
    expect(page.locator("#logout-form")).to_be_visible()
    expect(page.locator("h1")).not_to_be_empty()
    check(page, "logout confirmation", findings)
    page.locator("#sign-out").click()
    expect(page.locator("#message")).to_be_visible()
    check(page, "signed out", findings)
    page.goto("/account")
    expect(page).to_have_url(server.url + "/signin")
    findings.assert_none()
