"""Recovery in a real browser (Debian's Chromium with CDP virtual authenticators): codes
made and downloaded, the passkey lost, a recovery code on a new browser, a new passkey,
the other session ended, new codes, and the hold shown after a passkey sign-in
(docs/flows/recovery.md; SECURITY.md cases 32 and 54)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from sekisho.i18n import gettext
from sekisho.mail.compose import NOTICES
from tests.e2e.test_email_signin_browser import settle
from tests.e2e.test_passkeys_browser import (
    HWK_UV,
    Opener,
    VirtualAuthenticator,
    add_passkey,
    expect_passkey_account,
    open_device,  # noqa: F401 (a fixture: a browser context per device)
    server,  # noqa: F401 (a fixture: the server reached as localhost)
    sign_in_by_email,
)
from tests.support.recovery import wait_for_subject
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

pytestmark = pytest.mark.browser


def test_a_lost_passkey_is_replaced_with_a_recovery_code(
    server: LiveServer,  # noqa: F811
    smtp: SmtpCapture,
    open_device: Opener,  # noqa: F811
) -> None:
    address = "rita@example.com"
    server.add_user(address)
    owner = open_device(server, autofill=False, accept_downloads=True)
    VirtualAuthenticator(owner)
    sign_in_by_email(owner, server, smtp, address)
    owner.locator("#generate-form button[type=submit]").click()
    expect(owner.locator("#recovery-codes li")).to_have_count(10)
    codes = owner.locator("#recovery-codes code").all_inner_texts()
    with owner.expect_download() as download:
        owner.locator("#download-form button[type=submit]").click()
    saved = Path(download.value.path()).read_text(encoding="utf-8")
    assert all(code in saved for code in codes)
    assert download.value.suggested_filename == "sekisho-recovery-codes.txt"
    owner.goto("/account")
    expect(owner.locator("#recovery-codes-status")).to_contain_text("10")
    add_passkey(owner)

    # The passkey is lost with its device: another browser, another authenticator.
    rescuer = open_device(server, autofill=False)
    VirtualAuthenticator(rescuer)
    rescuer.goto("/signin")
    rescuer.locator("#recovery-link a").click()
    settle(rescuer, "#recovery-form")
    rescuer.locator("#email").fill(address)
    rescuer.locator("#code").fill(codes[0].lower())
    rescuer.locator("#recovery-form button[type=submit]").click()
    settle(rescuer, "#recovery-intro")
    session = rescuer.context.request.get(server.url + "/api/v1/session")
    assert session.json()["restriction"] == "recovery"
    restricted = rescuer.context.request.get(server.url + "/api/v1/sessions")
    assert restricted.status == 403
    assert restricted.json()["error"] == "session_restricted"
    rescuer.locator("#add-passkey").click()
    settle(rescuer, "#recovery-complete")
    expect(rescuer.locator("#hold-note")).to_be_visible()

    owner.goto("/account")
    expect(owner).to_have_url(server.url + "/signin")  # every other session ended

    rescuer.locator("#generate-form button[type=submit]").click()
    expect(rescuer.locator("#recovery-codes li")).to_have_count(10)
    rescuer.goto("/account")
    rescuer.locator("#signout-form button[type=submit]").click()
    expect(rescuer).to_have_url(server.url + "/signin")
    rescuer.locator("#passkey-button").click()
    expect_passkey_account(rescuer, server, address, amr=HWK_UV, aal=2)
    expect(rescuer.locator("#recovery-hold")).to_be_visible()
    expect(rescuer.locator("a.remove-passkey")).to_have_count(0)
    expect(rescuer.locator("#generate-form")).to_have_count(0)

    for notice in ("recovery_code_used", "recovery_completed", "recovery_codes_generated"):
        wait_for_subject(smtp, address, gettext("en", NOTICES[notice][0]))
