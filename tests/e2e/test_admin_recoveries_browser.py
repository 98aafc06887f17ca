"""The operator recovery pages in a real browser (Debian's Chromium, CDP virtual
authenticator), on a 375 px phone in English and Japanese: two operators, each signed in
with a passkey, reach the cases from the migration report; the first is told why an
unknown address cannot be opened, then opens a case with a reason; the second approves
it and sees the one-time code once, and a second click on a stale page is refused with a
page that says why. Every page passes the accessibility checks in every look
(docs/flows/recovery.md section 4; SECURITY.md case 54)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from sekisho.i18n import gettext
from sekisho.web.admin_recoveries import REFUSALS
from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_accessibility import (
    Findings,
    check,
    expect_tied_to_error,
    open_page,
    sign_in_as_operator,
)
from tests.e2e.test_email_signin_browser import settle
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

pytestmark = pytest.mark.browser
AKI = "aki@example.com"
BEN = "ben@example.com"
REASON = {
    "en": "Lost every device; identity checked by video call against the ID on file",
    "ja": "端末をすべて紛失。登録済みの身分証明書とビデオ通話で本人確認済み",
}


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server(host_name="localhost", admin_emails=[AKI, BEN])


def operator(
    device: Device, server: LiveServer, smtp: SmtpCapture, address: str, language: str
) -> Page:
    server.add_user(address)
    page = open_page(device, language)
    sign_in_as_operator(page, server, smtp, address)
    return page


@pytest.mark.parametrize("language", ["en", "ja"])
def test_two_operators_open_and_approve_a_recovery_on_a_phone(
    device: Device, server: LiveServer, smtp: SmtpCapture, language: str
) -> None:
    holder = f"nao-{language}@example.com"
    server.add_user(holder)
    findings = Findings()
    aki = operator(device, server, smtp, AKI, language)
    aki.goto("/admin/migration")
    aki.locator("#recoveries-link").click()
    settle(aki, "#open-form")
    check(aki, "recovery cases, none yet", findings)

    aki.locator("#email").fill("nobody@example.com")
    aki.locator("#reason").fill(REASON[language])
    aki.locator("#open-form button[type=submit]").click()
    expect(aki.locator("#error")).to_have_text(gettext(language, REFUSALS["no_account"]))
    expect_tied_to_error(aki, "#email")
    check(aki, "open a recovery, refused", findings)

    aki.locator("#email").fill(holder)
    aki.locator("#open-form button[type=submit]").click()
    case = aki.locator("li.case").first
    expect(case).to_have_attribute("data-state", "open")
    expect(case.locator(".reason")).to_have_text(REASON[language])
    expect(case.locator(".approve-form")).to_have_count(0)
    check(aki, "recovery cases, one open", findings)

    ben = operator(device, server, smtp, BEN, language)
    stale = ben.context.new_page()
    stale.goto("/admin/recoveries")
    ben.goto("/admin/recoveries")
    ben.locator("li.case .approve-form button").click()
    settle(ben, "#one-time-code")
    expect(ben.locator("#case-email")).to_have_text(holder)
    expect(ben.locator("#handover li")).to_have_count(4)
    check(ben, "one-time code", findings)

    stale.locator("li.case .approve-form button").click()
    refused = stale.locator('#message[data-error="recovery_case_refused"]')
    expect(refused).to_have_text(gettext(language, REFUSALS["approved"]))
    check(stale, "approval refused", findings)

    ben.goto("/admin/recoveries")
    case = ben.locator("li.case").first
    expect(case).to_have_attribute("data-state", "approved")
    case.locator("summary").click()
    expect(case.locator(".cancel-form textarea")).to_be_visible()
    check(ben, "recovery cases, cancel form open", findings)
    findings.assert_none()
