"""Changing the account's email address in a real browser (Debian's Chromium), in
English and Japanese at phone size, with axe on every page of the flow (issue 10,
SECURITY.md case 31; docs/flows/email-change.md): asked from the account page (the
current address refused first), the code typed on the next page (a wrong one first),
the notice read from the old address; then the link of a second change opened in
another browser, which only looks until its button is pressed, and refuses a second
use; last, the account page asking for a fresh sign-in once a passkey exists."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sekisho.i18n import gettext
from sekisho.mail.compose import NOTICES
from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_accessibility import Findings, check, expect_tied_to_error, open_page
from tests.e2e.test_passkeys_browser import VirtualAuthenticator, add_passkey, sign_in_by_email
from tests.e2e.test_signin_pages_browser import wrong_code
from tests.integration.test_email_change import confirmation
from tests.support.recovery import wait_for_subject
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, text_of

pytestmark = pytest.mark.browser


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server(host_name="localhost")


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_address_is_changed_by_code_then_by_link(
    server: LiveServer, smtp: SmtpCapture, device: Device, language: str
) -> None:
    old = f"{language}-old@example.com"
    new = f"{language}-new@example.com"
    newer = f"{language}-newer@example.com"
    server.add_user(old)
    findings = Findings()
    page = open_page(device, language)
    VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, old)
    expect(page.locator("#email-current")).to_contain_text(old)
    check(page, f"account with the email form ({language})", findings)

    page.locator("#new-email").fill(old)
    page.locator("#email-change-form button[type=submit]").click()
    expect(page.locator("#error")).to_be_visible()
    expect_tied_to_error(page, "#new-email")
    check(page, f"email change refused ({language})", findings)
    page.locator("#new-email").fill(new)
    page.locator("#email-change-form button[type=submit]").click()
    expect(page.locator("#email-change-sent")).to_contain_text(new)
    check(page, f"email change sent ({language})", findings)
    _link, _token, code = confirmation(smtp, new)
    page.locator("#email-code").fill(wrong_code(code))
    page.locator("#email-code-form button[type=submit]").click()
    expect(page.locator("#error")).to_be_visible()
    expect_tied_to_error(page, "#email-code")
    check(page, f"email change with a wrong code ({language})", findings)
    page.locator("#email-code").fill(code)
    page.locator("#email-code-form button[type=submit]").click()
    expect(page.locator("#email-changed")).to_contain_text(new)
    check(page, f"email changed ({language})", findings)
    notice = wait_for_subject(smtp, old, gettext(language, NOTICES["email_changed"][0]))
    assert new in text_of(notice)

    page.goto("/account")
    expect(page.locator("#email-current")).to_contain_text(new)
    page.locator("#new-email").fill(newer)
    page.locator("#email-change-form button[type=submit]").click()
    expect(page.locator("#email-change-sent")).to_be_visible()
    link, _token, _code = confirmation(smtp, newer)

    elsewhere = open_page(device, language)
    elsewhere.goto(link)
    expect(elsewhere.locator("#email-link-form")).to_be_visible()
    check(elsewhere, f"email change link ({language})", findings)
    elsewhere.locator("#email-link-form button[type=submit]").click()
    expect(elsewhere.locator("#email-changed")).to_contain_text(newer)
    elsewhere.goto(link)
    elsewhere.locator("#email-link-form button[type=submit]").click()
    expect(elsewhere.locator("[data-error=email_change_invalid]")).to_be_visible()
    check(elsewhere, f"email change link already used ({language})", findings)
    wait_for_subject(smtp, new, gettext(language, NOTICES["email_changed"][0]))

    # With a passkey, an email sign-in is no longer proof enough: the page says so.
    page.goto("/account")
    expect(page.locator("#email-current")).to_contain_text(newer)
    add_passkey(page)
    expect(page.locator("#email-reauth-note")).to_be_visible()
    expect(page.locator("#email-change-form")).to_have_count(0)
    check(page, f"account asking to sign in again before a change ({language})", findings)
    findings.assert_none()
