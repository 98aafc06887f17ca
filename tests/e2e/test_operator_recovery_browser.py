"""Operator-assisted recovery in a real browser (Debian's Chromium, CDP virtual
authenticator), on a 375 px phone in English and Japanese: two operators open and approve a case on
the command line, the holder follows the link from the recovery-code page, enters the
one-time code (a wrong one first), adds a passkey in the restricted session and the
recovery completes; every page on the way passes the accessibility checks in every look
(docs/flows/recovery.md section 4; SECURITY.md case 54)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from sekisho.i18n import gettext
from sekisho.mail.compose import NOTICES
from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_accessibility import Findings, check, expect_tied_to_error, open_page
from tests.e2e.test_email_signin_browser import settle
from tests.e2e.test_passkeys_browser import VirtualAuthenticator
from tests.support.cli import run_sekisho
from tests.support.recovery import wait_for_subject
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

pytestmark = pytest.mark.browser
AKI = "aki@example.com"
BEN = "ben@example.com"
REASON = "Lost every device; identity checked by video call against the ID on file"
WORDS = {
    "en": ("Sign in with a code from our staff", "the one-time code from our staff"),
    "ja": ("担当者から受け取ったコードでサインイン", "担当者から受け取った1回限りのコード"),
}


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server(host_name="localhost", admin_emails=[AKI, BEN])


def approved_code(server: LiveServer, address: str, language: str) -> str:
    url = server.settings.database_url
    operators = json.dumps([AKI, BEN])
    opened = run_sekisho(
        url,
        "recovery",
        "open",
        address,
        "--reason",
        REASON,
        "--operator",
        AKI,
        SEKISHO_ADMIN_EMAILS=operators,
    )
    assert opened.returncode == 0, opened.stderr
    case = re.search(r"^opened recovery (\S+) ", opened.stdout, re.MULTILINE)
    assert case is not None
    approved = run_sekisho(
        url,
        "recovery",
        "approve",
        case.group(1),
        "--operator",
        BEN,
        "--locale",
        language,
        SEKISHO_ADMIN_EMAILS=operators,
    )
    assert approved.returncode == 0, approved.stderr
    code = re.search(r"^one-time code: (\S+)$", approved.stdout, re.MULTILINE)
    assert code is not None
    return code.group(1)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_code_from_two_operators_recovers_the_account_on_a_phone(
    device: Device, server: LiveServer, smtp: SmtpCapture, language: str
) -> None:
    address = f"nao-{language}@example.com"
    server.add_user(address)
    code = approved_code(server, address, language)
    heading, intro = WORDS[language]
    page = open_page(device, language)
    VirtualAuthenticator(page)
    findings = Findings()

    page.goto("/signin/recovery")
    page.locator("#operator-recovery").click()
    settle(page, "#recovery-form")
    expect(page.locator("h1")).to_have_text(heading)
    check(page, "operator code form", findings)

    page.locator("#email").fill(address)
    page.locator("#code").fill("K7QM-3XVD-9RTA-HW2P")
    page.locator("#recovery-form button[type=submit]").click()
    expect(page.locator("#error")).to_be_visible()
    expect_tied_to_error(page, "#email")
    check(page, "operator code form with an error", findings)

    page.locator("#code").fill(code.lower())
    page.locator("#recovery-form button[type=submit]").click()
    settle(page, "#recovery-intro")
    expect(page.locator("#recovery-intro")).to_contain_text(intro)
    session = page.context.request.get(server.url + "/api/v1/session")
    assert session.json()["restriction"] == "recovery"
    check(page, "operator recovery session", findings)
    page.locator("#add-passkey").click()
    settle(page, "#recovery-complete")
    check(page, "operator recovery complete", findings)
    findings.assert_none()

    for notice in ("operator_recovery_approved", "operator_recovery_used", "recovery_completed"):
        wait_for_subject(smtp, address, gettext(language, NOTICES[notice][0]))
