"""A restricted session in a real browser (issue 10): an account moved into a tier that
needs a passkey signs in by email, sees only the enrolment page (ja/en, axe-clean at
375 px), adds a passkey with Chromium's virtual authenticator, and passkey.js signs in
with it at once, which opens the ordinary account page with a full AAL2 session."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_accessibility import Findings, check, open_page
from tests.e2e.test_email_signin_browser import settle
from tests.e2e.test_passkeys_browser import VirtualAuthenticator
from tests.integration.test_tiers import POLICY
from tests.support.cli import run_sekisho
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

pytestmark = pytest.mark.browser

HEADING = {"en": "Add a passkey to continue", "ja": "続けるにはパスキーを追加してください"}


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY, encoding="utf-8")
    return path


@pytest.fixture
def server(make_server: ServerFactory, policy_file: Path) -> LiveServer:
    return make_server(host_name="localhost", policy_file=policy_file)


def sign_in_by_email_code(page: Page, smtp: SmtpCapture, address: str) -> None:
    earlier = len(smtp.to(address))
    page.goto("/signin")
    page.locator("#email").fill(address)
    page.locator("#email-form button[type=submit]").click()
    settle(page, "#code-form #code")
    page.wait_for_load_state("load")  # wait.js, which submits a typed code, is running
    _link, code = link_and_code(smtp.wait_for(address, earlier + 1))
    page.locator("#code-form #code").fill(code)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_restricted_session_enrols_a_passkey_then_opens_the_account(
    server: LiveServer, smtp: SmtpCapture, device: Device, policy_file: Path, language: str
) -> None:
    address = f"sora-{language}@example.com"
    server.add_user(address)
    moved = run_sekisho(
        server.settings.database_url,
        "users",
        "set-tier",
        address,
        "moving",
        SEKISHO_POLICY_FILE=str(policy_file),
    )
    assert moved.returncode == 0, moved.stderr
    page = open_page(device, language)
    sign_in_by_email_code(page, smtp, address)
    settle(page, "#enrol")
    expect(page).to_have_url(server.url + "/account")
    expect(page.locator("h1")).to_have_text(HEADING[language])
    expect(page.get_by_role("heading", name=HEADING[language])).to_have_count(1)
    expect(page.locator("#passkeys")).to_have_count(0)
    findings = Findings()
    check(page, f"restricted ({language})", findings)
    findings.assert_none()
    authenticator = VirtualAuthenticator(page)
    page.locator("#add-passkey").click()
    settle(page, "#account-email")
    expect(page.locator("#account-email")).to_have_text(address)
    expect(page.locator("#session-amr")).to_have_attribute("data-aal", "2")
    expect(page.locator("#enrol")).to_have_count(0)
    assert len(authenticator.credentials()) == 1
    expect(page.locator("tr.passkey")).to_have_count(1)
