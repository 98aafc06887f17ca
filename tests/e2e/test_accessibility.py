"""Every page, in English and Japanese, light and dark, on a 375 px phone and a desktop:
no horizontal overflow, no button or table heading broken inside a word, and no serious
or critical axe-core violation (axe-playwright-python bundles axe.min.js: nothing is
downloaded at test time).

One test per language and backend walks through the real flows to reach each page
(sign-in with the password link offered, password, wait with the resend countdown and a
wrong code, the link on another device, an error page, the signed-in notice, the account
page with a passkey and two sessions, the remove confirmation, the wait page after a
resend and after too many wrong codes, the "This wasn't me" result, the operator refused
with an email session, the migration report and the development mailbox, new recovery
codes, the recovery sign-in with and without an error, the recovery session before and
after its passkey) and checks each page in all four looks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, ViewportSize, expect
from sqlalchemy import insert

from sekisho.core.records import User
from sekisho.store.tables import dev_mailbox
from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_email_signin_browser import settle
from tests.e2e.test_passkeys_browser import (
    NO_CONDITIONAL_MEDIATION,
    VirtualAuthenticator,
    add_passkey,
    sign_in_by_email,
)
from tests.e2e.test_signin_pages_browser import type_code, wrong_code
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

pytestmark = pytest.mark.browser

ADMIN = "admin@example.com"
OWNER = "owner@example.com"
GUEST = "guest@example.com"
PHONE = ViewportSize(width=375, height=812)
DESKTOP = ViewportSize(width=1280, height=900)
LOCALES = {"en": "en-GB", "ja": "ja-JP"}
BLOCKING = ("serious", "critical")
# Sandboxed mail frames run no script, so axe cannot enter them; the page around is scanned.
AXE_OPTIONS = {"iframes": False}
LINUX_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# Lines a button's or heading's text occupies: one, unless a word was broken.
LINES_OF = """
(element) => {
  const range = document.createRange();
  range.selectNodeContents(element);
  const tops = new Set();
  for (const rect of range.getClientRects()) {
    if (rect.width > 0 && rect.height > 0) { tops.add(Math.round(rect.top)); }
  }
  return tops.size;
}
"""
# Row actions (links and buttons in tables) whose accessible names repeat.
REPEATED_ACTIONS = """
() => {
  const names = [...document.querySelectorAll("table a, table button")].map(
    (element) => (element.getAttribute("aria-label") || element.textContent).trim()
  );
  return names.filter((name, index) => names.indexOf(name) !== index);
}
"""
# Controls whose boundary (border, else filled background) has less than 3:1 contrast
# with the page (WCAG 2.2 1.4.11, which axe does not check).
FAINT_CONTROLS = """
() => {
  const parse = (color) => {
    const [r, g, b, a = 1] = color.match(/[\\d.]+/g).map(Number);
    return { rgb: [r, g, b], alpha: a };
  };
  const luminance = ([r, g, b]) => {
    const [R, G, B] = [r, g, b].map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const page = parse(getComputedStyle(document.body).backgroundColor).rgb;
  const faint = [];
  for (const element of document.querySelectorAll("button, a.button, input:not([type=hidden])")) {
    if (!element.checkVisibility()) { continue; }
    const style = getComputedStyle(element);
    const border = parse(style.borderTopColor);
    const fill = parse(style.backgroundColor);
    const edges = [];
    if (parseFloat(style.borderTopWidth) > 0 && border.alpha > 0) { edges.push(ratio(border.rgb, page)); }
    if (fill.alpha > 0) { edges.push(ratio(fill.rgb, page)); }
    const best = Math.max(0, ...edges);
    if (best < 3) {
      faint.push(`${(element.textContent || element.name || element.id).trim()}: ${best.toFixed(2)}:1`);
    }
  }
  return faint;
}
"""
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
# Chart labels cut off by the edge of their SVG (which clips what it does not hold).
CLIPPED_CHART_TEXT = """
() => [...document.querySelectorAll("svg text")].filter((text) => {
  const frame = text.ownerSVGElement.getBoundingClientRect();
  const box = text.getBoundingClientRect();
  return box.width > 0 && (box.left < frame.left - 0.5 || box.right > frame.right + 0.5);
}).map((text) => text.textContent)
"""
ASPNET_V3 = "AQAAAAIAACcQAAAAEAABAgMEBQYHCAkKCwwNDg9B0Oxwty+PGIDSp95gcCfzeDvA4sGapUIUov8usXfD6A=="


@dataclass
class Findings:
    """Everything wrong, across pages and looks, reported at once."""

    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    def assert_none(self) -> None:
        assert self.checked
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server(host_name="localhost", admin_emails=[ADMIN])


def open_page(device: Device, language: str) -> Page:
    """A phone-sized browser in ``language`` without passkey autofill."""
    page = device(locale=LOCALES[language], viewport=PHONE, user_agent=LINUX_CHROME)
    page.context.add_init_script(NO_CONDITIONAL_MEDIATION)
    return page


def check(page: Page, name: str, findings: Findings) -> None:
    """Scan the current page in light and dark mode, at phone and desktop width."""
    axe = Axe()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            look = f"{name} [{scheme}, {size['width']} px]"
            findings.checked.append(look)
            repeated = page.evaluate(REPEATED_ACTIONS)
            if repeated:
                findings.problems.append(f"{look}: row actions share a name: {repeated}")
            for faint in page.evaluate(FAINT_CONTROLS):
                findings.problems.append(f"{look}: control below 3:1: {faint}")
            for label in page.evaluate(CLIPPED_CHART_TEXT):
                findings.problems.append(f"{look}: chart label {label!r} is cut off")
            overflow = page.evaluate(OVERFLOW)
            if overflow > 0:
                findings.problems.append(f"{look}: {overflow} px of horizontal overflow")
            for element in page.locator(
                "button:visible, .button:visible, th:visible:not(:has(> .visually-hidden))"
            ).all():
                if element.evaluate(LINES_OF) > 1:
                    findings.problems.append(
                        f"{look}: {element.inner_text()!r} breaks across lines"
                    )
            results = axe.run(page, options=AXE_OPTIONS).response
            for violation in results["violations"]:
                if violation["impact"] in BLOCKING:
                    targets = [node["target"] for node in violation["nodes"]][:5]
                    findings.problems.append(
                        f"{look}: axe {violation['id']} ({violation['impact']}): "
                        f"{violation['help']} at {targets}"
                    )
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(PHONE)


def expect_tied_to_error(page: Page, field: str) -> None:
    """The field says it is invalid and points at the message that says why."""
    expect(page.locator(field)).to_have_attribute("aria-invalid", "true")
    expect(page.locator(field)).to_have_attribute("aria-describedby", "error")
    expect(page.locator(field)).to_have_accessible_description(page.locator("#error").inner_text())


def import_users(server: LiveServer) -> None:
    """Two imported accounts (a cohort for the report), one with a legacy password."""
    database = server.database
    now = datetime.now(UTC)
    try:
        with database.transaction() as repos:
            for name in ("legacy", "quiet"):
                repos.users.save_imported(
                    User(
                        id=f"legacy-{name}",
                        email=f"{name}@example.com",
                        status="active",
                        created_at=now,
                        imported_at=now,
                    )
                )
            repos.passwords.put(
                "legacy-legacy", hash=ASPNET_V3, scheme="aspnet-identity-v3", now=now
            )
    finally:
        database.dispose()


def sign_in_as_operator(
    page: Page, server: LiveServer, smtp: SmtpCapture, address: str = ADMIN
) -> None:
    """Operator pages need a passkey session: sign in by email, add a passkey, then sign
    in with it (``page`` gets a virtual authenticator)."""
    VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)
    add_passkey(page)
    page.goto("/signin")
    page.locator("#passkey-button").click()
    expect(page).to_have_url(server.url + "/account")
    expect(page.locator("#session-amr")).to_have_attribute("data-aal", "2")


def keep_in_dev_mailbox(server: LiveServer, smtp: SmtpCapture, address: str) -> None:
    """Store a message the server really sent, as the development sender would."""
    message = smtp.to(address)[-1]
    database = server.database
    try:
        with database.engine.begin() as connection:
            connection.execute(
                insert(dev_mailbox).values(
                    received_at=datetime.now(UTC),
                    recipient=address,
                    subject=str(message["Subject"]),
                    raw=message.as_string(),
                )
            )
    finally:
        database.dispose()


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_page_is_accessible_and_fits_a_phone(
    server: LiveServer,
    make_server: ServerFactory,
    smtp: SmtpCapture,
    device: Device,
    language: str,
) -> None:
    findings = Findings()
    import_users(server)
    server.add_user(OWNER)
    server.add_user(ADMIN)
    server.add_user(GUEST)

    # The owner: signed in by email, with a passkey.
    owner = open_page(device, language)
    VirtualAuthenticator(owner)
    sign_in_by_email(owner, server, smtp, OWNER)
    add_passkey(owner)
    expect(owner.locator("#passkey-added")).to_be_visible()

    # A visitor: the sign-in pages, with their errors.
    visitor = open_page(device, language)
    visitor.goto("/signin")
    expect(visitor.locator("#password-link")).to_be_visible()
    check(visitor, "signin", findings)
    visitor.goto("/signin/password")
    check(visitor, "password", findings)
    visitor.locator("#email").fill("legacy@example.com")
    visitor.locator("#password").fill("not the password")
    visitor.locator("#password-form button[type=submit]").click()
    expect(visitor.locator("#error")).to_be_visible()
    expect_tied_to_error(visitor, "#password")
    check(visitor, "password with an error", findings)
    visitor.goto("/signin")
    visitor.locator("#email").fill(OWNER)
    visitor.locator("#email-form button[type=submit]").click()
    settle(visitor, "#approval-number")
    expect(visitor.locator("#resend-wait")).to_be_visible()
    check(visitor, "wait with the resend countdown", findings)
    link, code = link_and_code(smtp.wait_for(OWNER, 3))
    type_code(visitor, wrong_code(code))  # wait.js submits six digits by itself
    expect(visitor.locator("#error")).to_be_visible()
    expect_tied_to_error(visitor, "#code-form #code")
    check(visitor, "wait with a wrong code", findings)

    phone = open_page(device, language)
    phone.goto(link.removeprefix(server.url))
    expect(phone.locator("#code-form")).to_be_visible()
    check(phone, "link on another device", findings)
    phone.goto("/signin/email/link?token=not-a-token")
    expect(phone.locator("#message[data-error]")).to_be_visible()
    check(phone, "error message", findings)

    # The visitor finishes signing in: the owner now has two sessions.
    visitor.locator("#code-form #code").fill(code)  # submitted by wait.js
    settle(visitor, "#account-email")

    owner.goto("/signin")
    expect(owner.locator("#signed-in-text")).to_be_visible()
    check(owner, "signin while signed in", findings)
    owner.goto("/account")
    expect(owner.locator("#sessions tr.session")).to_have_count(2)
    check(owner, "account with a passkey and two sessions", findings)
    owner.goto(owner.locator("a.remove-passkey").first.get_attribute("href") or "")
    expect(owner.locator("#remove-form")).to_be_visible()
    check(owner, "remove confirmation", findings)

    # A guest on a server without a resend cooldown: a resent email, five wrong codes,
    # and "This wasn't me" on the newest email's link.
    quick = make_server(host_name="localhost", email_resend_cooldown=timedelta(0))
    guest = open_page(device, language)
    guest.goto(f"{quick.url}/signin")
    guest.locator("#email").fill(GUEST)
    guest.locator("#email-form button[type=submit]").click()
    settle(guest, "#approval-number")
    smtp.wait_for(GUEST, 1)
    guest.locator("#resend-button").click()
    expect(guest.locator("#resent")).to_be_visible()
    check(guest, "wait after a resend", findings)
    link, code = link_and_code(smtp.wait_for(GUEST, 2))
    for _ in range(5):
        type_code(guest, wrong_code(code))
    expect(guest.locator("#error")).to_be_visible()
    expect(guest.locator("#attempts-left")).to_have_count(0)
    check(guest, "wait after too many wrong codes", findings)
    phone.goto(link)
    settle(phone, "#deny-form")
    phone.locator("#deny-form button[type=submit]").click()
    expect(phone.locator("#deny-form")).to_have_count(0)
    expect(phone.locator("#message")).to_be_visible()
    check(phone, "this wasn't me", findings)

    # The operator: refused with an email session, then the migration report and the
    # development mailbox with a passkey session.
    refused = open_page(device, language)
    sign_in_by_email(refused, server, smtp, ADMIN)
    refused.goto("/admin/migration")
    expect(refused.locator('#message[data-error="operator_passkey_required"]')).to_be_visible()
    check(refused, "operator refused an email session", findings)
    admin = open_page(device, language)
    sign_in_as_operator(admin, server, smtp)
    keep_in_dev_mailbox(server, smtp, ADMIN)
    admin.goto("/admin/migration")
    expect(admin.locator("#sign-in-chart")).to_be_visible()
    check(admin, "migration report", findings)
    admin.goto("/dev/mailbox")
    check(admin, "development mailbox", findings)
    admin.locator("#mailbox a").first.click()
    expect(admin.locator("#mail-html")).to_be_visible()
    check(admin, "development mailbox message", findings)

    # Recovery: the operator makes recovery codes, then someone recovers the account
    # with one (a wrong code first) and adds a new passkey.
    admin.goto("/account")
    admin.locator("#generate-form button[type=submit]").click()
    expect(admin.locator("#recovery-codes li")).to_have_count(10)
    check(admin, "new recovery codes", findings)
    code = admin.locator("#recovery-codes code").first.inner_text()
    rescuer = open_page(device, language)
    VirtualAuthenticator(rescuer)
    rescuer.goto("/signin")
    rescuer.locator("#recovery-link a").click()
    settle(rescuer, "#recovery-form")
    check(rescuer, "recovery sign-in", findings)
    rescuer.locator("#email").fill(ADMIN)
    rescuer.locator("#code").fill("ABCD-EFGH-JKMN-PQRS")
    rescuer.locator("#recovery-form button[type=submit]").click()
    expect(rescuer.locator("#error")).to_be_visible()
    expect_tied_to_error(rescuer, "#email")
    check(rescuer, "recovery sign-in with an error", findings)
    rescuer.locator("#code").fill(code)
    rescuer.locator("#recovery-form button[type=submit]").click()
    settle(rescuer, "#recovery-intro")
    check(rescuer, "recovery session", findings)
    rescuer.locator("#add-passkey").click()
    settle(rescuer, "#recovery-complete")
    check(rescuer, "recovery complete", findings)

    findings.assert_none()
