"""Rich Authorization Requests (RFC 9396) in a real browser (Debian's Chromium, a CDP
virtual authenticator), in English and Japanese on a 375 px phone (issue 10; SECURITY.md
case 52): an authorization request carrying a ``withdrawal`` in ``authorization_details``
from a browser signed in by email steps up to the passkey on a sign-in page that offers
it first, then shows the amount and the destination on Sekisho's confirmation page; the
passkey confirms them, the browser goes back to the client with a code, and the token
response carries the confirmed details. Every page on the way is checked with axe (and
for overflow and broken words) in light and dark, at phone and desktop width."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Device
from tests.e2e.test_accessibility import Findings, check, open_page
from tests.e2e.test_confirmations_browser import (
    SHOWN,
    server,  # noqa: F401 (a fixture: the server with the withdrawal policy)
)
from tests.e2e.test_passkeys_browser import VirtualAuthenticator, add_passkey, sign_in_by_email
from tests.support.confirmations import WITHDRAWAL, redeem
from tests.support.oidc import authorize_url, exchange, post_as, register_client
from tests.support.relying_party import Callback
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

pytestmark = pytest.mark.browser

REQUESTED = [{"type": "withdrawal", **WITHDRAWAL}]
CURRENCY = {"en": "JPY (Japanese Yen)", "ja": "日本円（JPY）"}  # noqa: RUF001


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_withdrawal_in_authorization_details_is_shown_confirmed_and_tokenised(
    server: LiveServer,  # noqa: F811
    smtp: SmtpCapture,
    device: Device,
    callback: Callback,
    language: str,
) -> None:
    address = f"rar-{language}@example.com"
    server.add_user(address)
    registered = register_client(server, redirect_uris=(callback.redirect_uri,), name="Kabu Bank")
    findings = Findings()
    page = open_page(device, language)
    VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)
    add_passkey(page)

    page.goto(
        authorize_url(
            registered.client_id,
            redirect_uri=callback.redirect_uri,
            state="rar-state",
            authorization_details=json.dumps(REQUESTED),
        )
    )
    # An email session is AAL1; the withdrawal's step-up wants a passkey first.
    expect(page).to_have_url(server.url + "/signin")
    expect(page.locator("#passkey-required")).to_be_visible()
    check(page, f"sign-in asking for a passkey ({language})", findings)
    page.locator("#passkey-button").click()

    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/confirm/[A-Za-z0-9_\-]+$"))
    confirmation = page.url.rsplit("/", 1)[1]
    heading, amount, label, button = SHOWN[language]
    expect(page.locator("h1")).to_have_text(heading)
    details = page.locator("#confirmation-details")
    expect(details).to_contain_text(amount)
    expect(details).to_contain_text(label)
    expect(details).to_contain_text(CURRENCY[language])
    expect(details).to_contain_text(WITHDRAWAL["destination"])
    expect(page.locator("h1 + p")).to_contain_text("Kabu Bank")
    expect(page.locator("#confirm-button")).to_have_text(button)
    expect(page.locator("#cancel-link")).to_be_visible()
    check(page, f"transaction confirmation ({language})", findings)

    page.locator("#confirm-button").click()
    page.wait_for_url(callback.redirect_uri + "?*")
    method, values = callback.wait()
    assert method == "GET"
    assert values["state"] == "rar-state"
    assert values["iss"] == server.settings.public_origin
    tokens = exchange(server, registered, values["code"], redirect_uri=callback.redirect_uri)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["authorization_details"] == REQUESTED
    introspected = post_as(server, registered, "/introspect", token=tokens.json()["access_token"])
    assert introspected.json()["authorization_details"] == REQUESTED
    assert introspected.json()["txn"] == confirmation
    assert introspected.json()["acr"] == "phr"

    # Confirmed once: the page says so and offers no second confirmation.
    page.goto(f"/confirm/{confirmation}")
    expect(page.locator("#confirm-done")).to_be_visible()
    expect(page.locator("#confirm-button")).to_have_count(0)
    check(page, f"transaction confirmed ({language})", findings)
    assert redeem(server, registered, confirmation).status_code == 200
    findings.assert_none()
