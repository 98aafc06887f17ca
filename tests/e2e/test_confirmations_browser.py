"""A withdrawal confirmed in a real browser (Debian's Chromium, a CDP virtual
authenticator), in English and Japanese at phone size (issue 10, SECURITY.md cases 52
and 53): the application's first request meets RFC 9470's step-up challenge, the person
steps up with a passkey through the authorization endpoint, then sees the amount and
the destination on Sekisho's page, confirms with the passkey and comes back to the
application, which verifies and redeems the signed confirmation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_accessibility import Findings, check, open_page
from tests.e2e.test_passkeys_browser import VirtualAuthenticator, add_passkey, sign_in_by_email
from tests.support.confirmations import (
    WITHDRAWAL,
    ask,
    collect,
    confirming_server,
    details_hash,
    redeem,
    verify_confirmation,
)
from tests.support.oidc import Registered, authorize_url, exchange, register_client
from tests.support.relying_party import Callback
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

pytestmark = pytest.mark.browser

SHOWN = {
    "en": ("Confirm: Withdrawal", "¥1,250,000", "To account", "Confirm with my passkey"),
    "ja": ("出金の承認", "￥1,250,000", "出金先口座", "パスキーで承認する"),
}


@pytest.fixture
def server(make_server: ServerFactory, tmp_path: Path) -> LiveServer:
    return confirming_server(make_server, tmp_path, host_name="localhost")


def _received(callback: Callback, count: int) -> dict[str, str]:
    deadline = time.monotonic() + 15
    while len(callback.received) < count:
        assert time.monotonic() < deadline, callback.received
        time.sleep(0.05)
    return callback.received[count - 1][1]


def _access_token(
    page: Page, server: LiveServer, registered: Registered, callback: Callback, **extra: str
) -> str:
    """The code flow in ``page`` (a step-up, when ``extra`` asks for one, passed with the
    passkey), the code redeemed as the application would."""
    before = len(callback.received)
    page.goto(authorize_url(registered.client_id, redirect_uri=callback.redirect_uri, **extra))
    if extra:
        page.locator("#passkey-button").click()
    received = _received(callback, before + 1)
    assert "code" in received, received
    answer = exchange(server, registered, received["code"], redirect_uri=callback.redirect_uri)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_withdrawal_is_stepped_up_shown_confirmed_and_redeemed(
    server: LiveServer,
    smtp: SmtpCapture,
    device: Device,
    callback: Callback,
    language: str,
) -> None:
    address = f"{language}-saver@example.com"
    server.add_user(address)
    registered = register_client(server, redirect_uris=(callback.redirect_uri,))
    page = open_page(device, language)
    VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)
    add_passkey(page)

    weak = ask(
        server, _access_token(page, server, registered, callback), return_uri=callback.redirect_uri
    )
    assert weak.status_code == 401
    challenge_header = weak.headers["www-authenticate"]
    assert 'acr_values="phr"' in challenge_header
    assert "max_age=300" in challenge_header
    token = _access_token(page, server, registered, callback, acr_values="phr", max_age="300")
    asked = ask(server, token, return_uri=callback.redirect_uri)
    assert asked.status_code == 201, asked.text
    confirmation_id = asked.json()["id"]

    page.goto(asked.json()["url"])
    heading, amount, label, button = SHOWN[language]
    expect(page.locator("h1")).to_have_text(heading)
    expect(page.locator("#confirmation-details")).to_contain_text(amount)
    expect(page.locator("#confirmation-details")).to_contain_text(label)
    expect(page.locator("#confirmation-details")).to_contain_text(WITHDRAWAL["destination"])
    expect(page.locator("#confirm-button")).to_have_text(button)
    findings = Findings()
    check(page, f"confirmation ({language})", findings)
    findings.assert_none()

    before = len(callback.received)
    page.locator("#confirm-button").click()
    assert _received(callback, before + 1) == {"confirmation": confirmation_id}
    collected = collect(server, registered, confirmation_id).json()
    claims = verify_confirmation(server, collected["confirmation"], client_id=registered.client_id)
    assert claims["details"] == WITHDRAWAL
    assert claims["details_hash"] == details_hash(WITHDRAWAL)
    assert claims["acr"] == "phr"
    assert redeem(server, registered, confirmation_id).status_code == 200
    assert redeem(server, registered, confirmation_id).json()["error"] == "confirmation_used"

    page.goto(asked.json()["url"])
    expect(page.locator("#confirm-done")).to_be_visible()
    expect(page.locator("#confirm-button")).to_have_count(0)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_without_a_passkey_the_page_shows_the_details_and_says_to_add_one(
    server: LiveServer,
    smtp: SmtpCapture,
    device: Device,
    callback: Callback,
    language: str,
) -> None:
    """An action without a step-up can be asked from an email session, but only a
    passkey that verifies the user confirms it: the page shows what was asked and sends
    the person to their account to add one."""
    address = f"{language}-closer@example.com"
    server.add_user(address)
    registered = register_client(server, redirect_uris=(callback.redirect_uri,))
    page = open_page(device, language)
    sign_in_by_email(page, server, smtp, address)
    token = _access_token(page, server, registered, callback)
    asked = ask(server, token, action="close_account", details={"account": "A-0012345"})
    assert asked.status_code == 201, asked.text
    page.goto(asked.json()["url"])
    expect(page.locator("#confirmation-details")).to_contain_text("A-0012345")
    expect(page.locator("#confirm-unavailable")).to_be_visible()
    expect(page.locator("#confirm-button")).to_have_count(0)
    expect(page.locator('main a[href="/account"]')).to_be_visible()
    findings = Findings()
    check(page, f"confirmation without a passkey ({language})", findings)
    findings.assert_none()
