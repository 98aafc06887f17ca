"""Email sign-in in a real browser (Debian's Chromium through Playwright).

Each simulated device is its own browser context, so cookies (the browser binding, the
CSRF cookie, the session) are kept apart exactly as on two real devices. The link and
code are read from the real MIME message the server sent to the test SMTP server.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Device
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

pytestmark = pytest.mark.browser

WAIT_URL = re.compile(r"/signin/email/wait\?flow=[A-Za-z0-9_\-]+$")
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
REFUSAL = "#message[data-error], #error"


def settle(page: Page, expected: str) -> None:
    """Wait until ``expected`` or one of Sekisho's refusals shows; fail fast on a refusal."""
    expect(page.locator(f"{expected}, {REFUSAL}").first).to_be_visible()
    refusal = page.locator(REFUSAL)
    if refusal.count():
        code = refusal.first.get_attribute("data-error") or "form error"
        pytest.fail(f"{page.url} refused ({code}): {refusal.first.inner_text()}")


def request_email(page: Page, address: str) -> None:
    """Ask for a sign-in email from /signin and stay on the wait page."""
    page.goto("/signin")
    page.locator("#email").fill(address)
    page.locator("#email-form button[type=submit]").click()
    settle(page, "#approval-number")
    expect(page).to_have_url(WAIT_URL)
    expect(page.locator("#code-form #code")).to_be_visible()
    expect(page.locator("#approval-number")).to_have_text(re.compile(r"^\s*\d{2}\s*$"))
    page.wait_for_load_state("load")  # wait.js, which submits a typed code, is running


def emailed(smtp: SmtpCapture, server: LiveServer, address: str) -> tuple[str, str]:
    link, code = link_and_code(smtp.wait_for(address))
    assert link.startswith(server.url + "/signin/email/link?token="), link
    return link, code


def session_of(page: Page, server: LiveServer) -> dict[str, Any] | None:
    """The device's current session from the API (its cookies, no navigation)."""
    response = page.context.request.get(server.url + "/api/v1/session")
    if response.status == 401:
        return None
    assert response.ok, response.text()
    body: dict[str, Any] = response.json()
    return body


def expect_account(page: Page, server: LiveServer, address: str) -> None:
    """The device is on /account, signed in as ``address`` by email."""
    settle(page, "#account-email")
    expect(page).to_have_url(server.url + "/account")
    expect(page.locator("#account-email")).to_have_text(address)
    expect(page.locator("#session-amr")).to_have_attribute("data-amr", "email")
    expect(page.locator("#signout-form")).to_be_visible()
    session = session_of(page, server)
    assert session is not None
    assert session["amr"] == ["email"]


def expect_not_signed_in(page: Page, server: LiveServer) -> None:
    assert session_of(page, server) is None


def open_link_elsewhere(device: Device, link: str) -> Page:
    """Open the emailed link in a new device with no cookies: code and number forms."""
    other = device()
    other.goto(link)
    settle(other, "#code-form")
    expect(other.locator("#code-form #code")).to_be_visible()
    expect(other.locator("#approve-form #number")).to_be_visible()
    expect(other.locator("#confirm-form")).to_have_count(0)
    return other


def test_same_browser_link_confirms_and_signs_in(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    address = "alice@example.com"
    server.add_user(address)
    page = device()
    request_email(page, address)
    link, _code = emailed(smtp, server, address)

    # The email client opens the link in a new tab of the same browser.
    tab = page.context.new_page()
    tab.goto(link)
    settle(tab, "#confirm-form")
    confirm = tab.locator("#confirm-form")
    expect(confirm).to_be_visible()
    expect(tab.locator("#approve-form")).to_have_count(0)
    expect_not_signed_in(tab, server)  # looking at the link spends nothing
    confirm.locator("button[type=submit]").click()

    expect_account(tab, server, address)


def test_code_typed_on_the_wait_page_signs_in(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    address = "bob@example.com"
    server.add_user(address)
    waiting = device()
    request_email(waiting, address)
    _link, code = emailed(smtp, server, address)

    # Six digits in: wait.js submits the form by itself.
    waiting.locator("#code-form #code").fill(code)

    expect_account(waiting, server, address)


def test_link_with_code_on_another_device_signs_in_that_device(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    address = "carol@example.com"
    server.add_user(address)
    waiting = device()
    request_email(waiting, address)
    link, code = emailed(smtp, server, address)

    phone = open_link_elsewhere(device, link)
    phone.locator("#code-form #code").fill(code)
    phone.locator("#code-form button[type=submit]").click()

    expect_account(phone, server, address)
    expect(waiting).to_have_url(WAIT_URL)
    expect_not_signed_in(waiting, server)


def test_number_matching_approves_the_waiting_browser(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    address = "dave@example.com"
    server.add_user(address)
    waiting = device()
    request_email(waiting, address)
    number = waiting.locator("#approval-number").inner_text().strip()
    link, _code = emailed(smtp, server, address)

    phone = open_link_elsewhere(device, link)
    phone.locator("#approve-form #number").fill(number)
    phone.locator("#approve-form button[type=submit]").click()
    settle(phone, "#message")

    # wait.js notices the approval and completes the sign-in by itself.
    expect_account(waiting, server, address)
    expect_not_signed_in(phone, server)


def test_wrong_number_burns_the_link_and_the_code_still_works(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    address = "erin@example.com"
    server.add_user(address)
    waiting = device()
    request_email(waiting, address)
    number = int(waiting.locator("#approval-number").inner_text().strip())
    link, code = emailed(smtp, server, address)

    phone = open_link_elsewhere(device, link)
    phone.locator("#approve-form #number").fill(str(10 + (number - 10 + 1) % 90))
    phone.locator("#approve-form button[type=submit]").click()
    expect(phone.locator("#message")).to_have_attribute("data-error", "approval_refused")
    expect(phone.locator("#message")).to_have_attribute("role", "alert")
    expect_not_signed_in(phone, server)
    expect(waiting).to_have_url(WAIT_URL)
    expect_not_signed_in(waiting, server)

    waiting.locator("#code-form #code").fill(code)
    expect_account(waiting, server, address)


def test_wait_page_says_when_another_device_finished(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    address = "fay@example.com"
    server.add_user(address)
    waiting = device()
    request_email(waiting, address)
    link, code = emailed(smtp, server, address)
    phone = open_link_elsewhere(device, link)
    phone.locator("#code-form #code").fill(code)
    phone.locator("#code-form button[type=submit]").click()
    expect_account(phone, server, address)

    status = waiting.locator("#flow-status")
    completed = status.get_attribute("data-completed")
    assert completed
    expect(status).to_have_text(completed)


def test_wait_page_says_while_email_is_delayed(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    """SMTP down: the notice shows (from the page, or from wait.js's polling); once the
    mail server is back and the email delivered, wait.js hides it again."""
    address = "gus@example.com"
    server.add_user(address)
    smtp.stop()
    waiting = device()
    request_email(waiting, address)
    notice = waiting.locator("#mail-delayed")
    expect(notice).to_be_visible()
    expect(notice).to_have_text(re.compile("^Sign-in emails are delayed right now"))
    smtp.start()
    emailed(smtp, server, address)
    expect(notice).to_be_hidden()


def test_japanese_browser_sees_japanese_signin_page(server: LiveServer, device: Device) -> None:
    page = device(locale="ja-JP")
    page.goto("/signin")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    heading = page.locator("h1")
    expect(heading).not_to_have_text("Sign in")
    expect(heading).to_have_text(JAPANESE)
