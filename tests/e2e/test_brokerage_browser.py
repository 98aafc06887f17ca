"""The brokerage example (examples/brokerage) in a real browser, signing in through
Sekisho, in English and Japanese on a 375 px phone, with every page of the walk checked
by axe-core (and for overflow, broken words and faint controls) on both sides: sign in
by email code, a large withdrawal refused for want of a passkey, a passkey added on
Sekisho's account page (Chromium's virtual authenticator), the RFC 9470 step-up on a
sign-in page that offers the passkey first, the withdrawal confirmed on Sekisho's page
bound to its amount and destination, and done (issues 9 and 10). The same walk once more
(English) with the emailed link opened in a second browser context, where the number
shown by the waiting phone approves it and the waiting phone continues."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_accessibility import LINUX_CHROME, LOCALES, PHONE, Findings, check
from tests.e2e.test_email_signin_browser import expect_not_signed_in, settle
from tests.e2e.test_passkeys_browser import (
    NO_CONDITIONAL_MEDIATION,
    VirtualAuthenticator,
    add_passkey,
)
from tests.examples.brokerage.test_app import POLICY, running_example
from tests.support.oidc import register_client
from tests.support.ports import free_port
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

pytestmark = pytest.mark.browser

EXPECTED = {
    "en": {
        "signed_out": "Sign in with Sekisho",
        "passkey_needed": "A passkey is needed",
        "stepped_up": "Submit the withdrawal once more",
        "done": "The withdrawal is done.",
        "confirm_amount": "¥500,000",
        "sekisho_signin": "Email address",
        "passkey_first": "asks you to sign in with a passkey",
    },
    "ja": {
        "signed_out": "Sekisho でサインイン",
        "passkey_needed": "パスキーが必要です",
        "stepped_up": "出金をもう一度送信してください",
        "done": "出金が完了しました。",
        "confirm_amount": "500,000",
        "sekisho_signin": "メールアドレス",
        "passkey_first": "パスキーでのサインインを求めています",
    },
}


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    """Sekisho reached as localhost (WebAuthn needs a domain for its RP ID), with the
    example's own policy file, which declares the withdrawal action."""
    return make_server(host_name="localhost", policy_file=POLICY)


@pytest.fixture
def example(server: LiveServer) -> Iterator[str]:
    port = free_port()
    registered = register_client(
        server,
        redirect_uris=(
            f"http://localhost:{port}/callback",
            f"http://localhost:{port}/withdrawals/confirmed",
        ),
        name="Brokerage",
    )
    assert registered.secret is not None
    with running_example(
        server, port, registered.client_id, registered.secret, host_name="localhost"
    ) as origin:
        yield origin


def _withdraw(page: Page, amount: int) -> None:
    page.locator("#amount").fill(str(amount))
    page.locator("form[action='/withdraw'] button[type=submit]").click()


def _to_the_wait_page(
    page: Page,
    server: LiveServer,
    example: str,
    language: str,
    findings: Findings,
) -> None:
    """From the signed-out example to Sekisho's wait page, an email asked for."""
    words = EXPECTED[language]
    page.goto(example + "/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#sign-in")).to_have_text(words["signed_out"])
    check(page, "brokerage signed out", findings)

    page.locator("#sign-in").click()
    expect(page).to_have_url(server.url + "/signin")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("label[for=email]")).to_have_text(words["sekisho_signin"])
    expect(page.locator("#passkey-required")).to_have_count(0)
    check(page, "Sekisho sign-in from the example", findings)
    page.locator("#email").fill("daichi@example.com")
    page.locator("#email-form button[type=submit]").click()
    settle(page, "#code-form #code")
    page.wait_for_load_state("load")  # wait.js, which submits a typed code, is running
    check(page, "Sekisho wait page from the example", findings)


def _step_up_and_withdraw(
    page: Page,
    server: LiveServer,
    example: str,
    language: str,
    findings: Findings,
) -> None:
    """Signed in by email at the example: a large withdrawal needs a passkey, which is
    added on Sekisho's account page, proved in the step-up, and the withdrawal confirmed."""
    words = EXPECTED[language]
    expect(page).to_have_url(example + "/")
    expect(page.locator("#acr")).to_have_text("urn:sekisho:acr:aal1")
    expect(page.locator("#amr")).to_have_text("email")
    expect(page.locator("#balance")).to_have_text("¥1,250,000")
    check(page, "brokerage account", findings)

    _withdraw(page, 500_000)
    expect(page.locator("#error")).to_have_text("unmet_authentication_requirements")
    expect(page.locator("h1")).to_have_text(words["passkey_needed"])
    check(page, "brokerage: a passkey is needed", findings)

    page.goto(server.url + "/account")
    add_passkey(page)
    page.goto(example + "/")
    _withdraw(page, 500_000)
    expect(page).to_have_url(server.url + "/signin")
    expect(page.locator("#passkey-required")).to_contain_text(words["passkey_first"])
    expect(page.locator("#passkey-button")).to_be_visible()
    check(page, "Sekisho sign-in asking for a passkey", findings)
    page.locator("#passkey-button").click()
    expect(page).to_have_url(example + "/")
    expect(page.locator("#acr")).to_have_text("phr")
    expect(page.locator("#amr")).to_have_text(re.compile(r"\bhwk\b|\bswk\b"))
    expect(page.locator("#notice")).to_contain_text(words["stepped_up"])
    check(page, "brokerage after the step-up", findings)

    _withdraw(page, 500_000)
    expect(page).to_have_url(re.compile(re.escape(server.url + "/confirm/")))
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#confirmation-details")).to_contain_text(words["confirm_amount"])
    expect(page.locator("#confirmation-details")).to_contain_text("MUFG 0123-4567890")
    check(page, "Sekisho confirmation of the withdrawal", findings)
    page.locator("#confirm-button").click()
    expect(page).to_have_url(example + "/")
    expect(page.locator("#notice")).to_have_text(words["done"])
    expect(page.locator("#balance")).to_have_text("¥750,000")
    check(page, "brokerage after the withdrawal", findings)


def _phone(device: Device, language: str) -> Page:
    page = device(locale=LOCALES[language], viewport=PHONE, user_agent=LINUX_CHROME)
    page.context.add_init_script(NO_CONDITIONAL_MEDIATION)
    return page


@pytest.mark.parametrize("language", ["en", "ja"])
def test_sign_in_step_up_and_withdraw_on_a_phone(
    server: LiveServer, smtp: SmtpCapture, device: Device, example: str, language: str
) -> None:
    findings = Findings()
    server.add_user("daichi@example.com")
    page = _phone(device, language)
    authenticator = VirtualAuthenticator(page)

    _to_the_wait_page(page, server, example, language, findings)
    _link, code = link_and_code(smtp.wait_for("daichi@example.com", 1))
    page.locator("#code-form #code").fill(code)
    _step_up_and_withdraw(page, server, example, language, findings)
    assert len(authenticator.credentials()) == 1
    findings.assert_none()


def test_the_email_link_opened_in_a_second_browser_context(
    server: LiveServer, smtp: SmtpCapture, device: Device, example: str
) -> None:
    """The waiting phone continues to the example once the emailed link, opened in a
    second browser context (another device: no shared cookies), is approved there with
    the number the waiting page shows; then the same step-up and withdrawal."""
    findings = Findings()
    server.add_user("daichi@example.com")
    page = _phone(device, "en")
    authenticator = VirtualAuthenticator(page)

    _to_the_wait_page(page, server, example, "en", findings)
    number = page.locator("#approval-number").inner_text().strip()
    link, _code = link_and_code(smtp.wait_for("daichi@example.com", 1))
    other = _phone(device, "en")
    assert other.context is not page.context
    other.goto(link)
    settle(other, "#approve-form #number")
    expect(other.locator("html")).to_have_attribute("lang", "en")
    check(other, "Sekisho link page on a second device", findings)
    other.locator("#approve-form #number").fill(number)
    other.locator("#approve-form button[type=submit]").click()
    settle(other, "#message")
    check(other, "Sekisho link approved on a second device", findings)
    expect_not_signed_in(other, server)  # the approval signs in the waiting phone only

    # wait.js on the waiting phone notices the approval and resumes the authorization.
    _step_up_and_withdraw(page, server, example, "en", findings)
    assert len(authenticator.credentials()) == 1
    findings.assert_none()
