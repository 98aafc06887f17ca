"""The account page, the migration report and the development mailbox in a real browser,
in English and Japanese: words instead of codes, local times, naming and removing
passkeys, Remove only where the server allows it, dated charts with their numbers, and
the mail's HTML part shown without running its scripts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import insert

from sekisho.store.tables import dev_mailbox
from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_accessibility import (
    ADMIN,
    LINUX_CHROME,
    LOCALES,
    import_users,
    keep_in_dev_mailbox,
    sign_in_as_operator,
)
from tests.e2e.test_email_signin_browser import settle
from tests.e2e.test_passkeys_browser import (
    NO_CONDITIONAL_MEDIATION,
    VirtualAuthenticator,
    add_passkey,
    sign_in_by_email,
    sign_out,
    stored_passkeys,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

pytestmark = pytest.mark.browser

TOKYO = "Asia/Tokyo"
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "email": "Email (standard protection: one step)",
        "passkey": "Passkey (strong protection: two factors, cannot be phished)",
        "device": "Chrome on Linux",
        "this device": "Chrome on Linux (this browser)",
        "remove": "Remove passkey My laptop",
        "rename": "Rename passkey My laptop",
        "confirm": "Remove the passkey “My laptop”?",
        "passkey word": "Passkey",
    },
    "ja": {
        "email": "メール（標準の保護：1段階の確認）",  # noqa: RUF001
        "passkey": "パスキー（強力な保護：2要素、フィッシング不可）",  # noqa: RUF001
        "device": "Linux 上の Chrome",
        "this device": "Linux 上の Chrome（このブラウザ）",  # noqa: RUF001
        "remove": "パスキー「My laptop」を削除",
        "rename": "パスキー「My laptop」の名前を変更",
        "confirm": "パスキー「My laptop」を削除しますか？",  # noqa: RUF001
        "passkey word": "パスキー",
    },
}
JUST_NOW = {"en": re.compile(r"^(now|\d+ seconds? ago)$"), "ja": re.compile(r"^(今|\d+ 秒前)$")}
LANGUAGES = ["en", "ja"]
CODES = re.compile(r"\b(AAL\d|hwk|swk|mfa|pin)\b")


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server(host_name="localhost", admin_emails=[ADMIN])


def open_page(device: Device, language: str, **options: Any) -> Page:
    """Chrome on Linux in Tokyo, in ``language``, without passkey autofill."""
    page = device(locale=LOCALES[language], timezone_id=TOKYO, user_agent=LINUX_CHROME, **options)
    page.context.add_init_script(NO_CONDITIONAL_MEDIATION)
    return page


def local_clock(datetime_attribute: str) -> str:
    """'17:08' style hour and minute of a <time datetime> in Tokyo, as Intl writes it."""
    moment = datetime.fromisoformat(datetime_attribute.replace("Z", "+00:00"))
    local = moment.astimezone(ZoneInfo(TOKYO))
    return f"{local.hour}:{local.minute:02d}"


def twelve_hour(clock: str) -> str:
    hour, minute = clock.split(":")
    return f"{int(hour) % 12 or 12}:{minute}"


# -- words, devices and times ---------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_account_says_how_and_when_in_words_and_local_time(
    server: LiveServer,
    smtp: SmtpCapture,
    device: Device,
    language: str,
) -> None:
    words = WORDS[language]
    address = "words@example.com"
    server.add_user(address)
    page = open_page(device, language)
    VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)

    expect(page.locator("#session-amr")).to_have_text(words["email"])
    current = page.locator("#sessions tr.session").first
    expect(current.locator("td").first).to_have_text(words["this device"])
    expect(current.locator(".session-method")).to_have_text(words["email"])
    signed_in = page.locator("dl.facts time")
    expect(signed_in).to_have_text(JUST_NOW[language])
    clock = local_clock(signed_in.get_attribute("datetime") or "")
    expect(signed_in).to_have_attribute(
        "title", re.compile(re.escape(clock if language == "ja" else twelve_hour(clock)))
    )
    assert not CODES.search(page.locator("main").inner_text())

    add_passkey(page)
    sign_out(page, server)
    page.locator("#passkey-button").click()
    settle(page, "#account-email")
    expect(page.locator("#session-amr")).to_have_text(words["passkey"])
    expect(page.locator("#activity .event-method").first).to_have_text(words["passkey word"])
    assert not CODES.search(page.locator("main").inner_text())


@pytest.mark.parametrize("language", LANGUAGES)
def test_without_script_times_read_in_utc(
    server: LiveServer,
    smtp: SmtpCapture,
    device: Device,
    language: str,
) -> None:
    address = "noscript@example.com"
    server.add_user(address)
    page = open_page(device, language, java_script_enabled=False)
    sign_in_by_email(page, server, smtp, address, script=False)
    signed_in = page.locator("dl.facts time")
    expect(signed_in).to_have_text(re.compile(r"UTC$"))
    expect(signed_in).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT[\d:]{8}Z$"))


# -- adding, naming and removing passkeys ---------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_new_passkey_is_confirmed_named_and_removed_after_asking(
    server: LiveServer,
    smtp: SmtpCapture,
    device: Device,
    language: str,
) -> None:
    words = WORDS[language]
    address = "named@example.com"
    user_id = server.add_user(address)
    page = open_page(device, language)
    VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)
    add_passkey(page)

    added = page.locator("#passkey-added")
    expect(added).to_be_visible()
    expect(added).to_have_attribute("role", "status")
    [passkey] = stored_passkeys(server, user_id)
    expect(page.locator("#added-name")).to_have_value(passkey.name)
    page.locator("#added-name").fill("My laptop")
    page.locator("#name-added-form button[type=submit]").click()
    expect(page.locator("#passkey-added")).to_have_count(0)
    expect(page.locator("tr.passkey input[name=name]")).to_have_value("My laptop")
    assert [p.name for p in stored_passkeys(server, user_id)] == ["My laptop"]

    expect(page.get_by_role("link", name=words["remove"], exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=words["rename"], exact=True)).to_be_visible()

    page.get_by_role("link", name=words["remove"], exact=True).click()
    expect(page.locator("h1")).to_have_text(words["confirm"])
    page.locator("#keep-passkey").click()
    expect(page.locator("tr.passkey")).to_have_count(1)
    assert len(stored_passkeys(server, user_id)) == 1

    page.get_by_role("link", name=words["remove"], exact=True).click()
    page.locator("#remove-form button[type=submit]").click()
    expect(page.locator("#passkey-removed")).to_be_visible()
    expect(page.locator("tr.passkey")).to_have_count(0)
    assert stored_passkeys(server, user_id) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_remove_shows_only_where_the_server_allows_it(
    server: LiveServer,
    smtp: SmtpCapture,
    device: Device,
    language: str,
) -> None:
    """A session opened with the legacy password may not remove passkeys
    (PasskeyService.freshness, the rule remove() enforces): no Remove link, and the
    confirmation page and the removal itself are refused."""
    import_users(server)
    owner = open_page(device, language)
    VirtualAuthenticator(owner)
    sign_in_by_email(owner, server, smtp, "legacy@example.com")
    add_passkey(owner)
    expect(owner.locator("a.remove-passkey")).to_have_count(1)
    href = owner.locator("a.remove-passkey").get_attribute("href") or ""

    legacy = open_page(device, language)
    legacy.goto("/signin/password")
    legacy.locator("#email").fill("legacy@example.com")
    legacy.locator("#password").fill("my password")
    legacy.locator("#password-form button[type=submit]").click()
    settle(legacy, "#account-email")
    expect(legacy.locator("tr.passkey")).to_have_count(1)
    expect(legacy.locator("a.remove-passkey")).to_have_count(0)
    expect(legacy.locator("#finish-migration")).to_be_visible()

    csrf = legacy.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    confirmation = legacy.goto(href)
    assert confirmation is not None
    assert confirmation.status == 403
    refused = legacy.request.post(
        server.url + href.removesuffix("/remove") + "/delete",
        form={"csrf_token": csrf},
        headers={"Origin": server.url},
        max_redirects=0,
    )
    assert refused.status == 403
    assert len(stored_passkeys(server, "legacy-legacy")) == 1


# -- the migration report -------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_migration_report_has_dated_counted_axes_tables_and_cohorts(
    server: LiveServer,
    smtp: SmtpCapture,
    device: Device,
    language: str,
) -> None:
    import_users(server)
    server.add_user(ADMIN)
    mover = open_page(device, language)
    sign_in_by_email(mover, server, smtp, "quiet@example.com")
    admin = open_page(device, language)
    sign_in_as_operator(admin, server, smtp)
    admin.goto("/admin/migration")
    today = datetime.now(UTC).date().isoformat()
    generated = admin.locator("#generated time")
    expect(generated).to_have_attribute("datetime", re.compile(rf"^{today}T[\d:]{{8}}Z$"))
    expect(generated).not_to_have_text(re.compile("UTC"))  # localised by time.js

    chart = admin.locator("#sign-in-chart")
    dates = chart.locator("text").filter(has_text=re.compile(r"^\d\d-\d\d$"))
    assert dates.count() >= 4
    assert dates.last.text_content() == today[5:]
    counts = [t.text_content() for t in chart.locator("text").all()]
    assert "0" in counts
    assert "4" in counts
    # Today: two email sign-ins (the mover's, the operator's first) and the operator's
    # passkey sign-in, which operator pages need: an email segment and a passkey one.
    today_bars = chart.locator(f"rect[data-day='{today}']")
    expect(today_bars).to_have_count(2)
    today_x = float(today_bars.first.get_attribute("x") or 0)
    assert all(float(r.get_attribute("x") or 0) <= today_x for r in chart.locator("rect").all())
    assert today_x > 0.9 * float((chart.get_attribute("viewBox") or "").split()[2]) - 30
    email_bar = today_bars.first.locator("title")
    expect(email_bar).to_contain_text(f"{today} · ")
    expect(email_bar).to_contain_text(": 2")
    expect(today_bars.last.locator("title")).to_contain_text(": 1")

    admin.locator("details.data summary").click()
    first_row = admin.locator("#sign-ins tbody tr").first
    expect(first_row.locator("td").first).to_have_text(today)
    expect(first_row.locator("td").last).to_have_text("3")

    cohort = admin.locator("#cohorts tr.cohort-row")
    expect(cohort).to_have_count(1)
    expect(cohort.locator("td")).to_have_text([today, "2", "1", "50%"])
    point = admin.locator("#cohort-chart circle").last
    expect(point.locator("title")).to_contain_text("50% (1/2)")
    shares = [t.text_content() for t in admin.locator("#cohort-chart text").all()]
    assert "0%" in shares
    assert "100%" in shares


# -- the development mailbox ----------------------------------------------------------


def hostile_message(server: LiveServer) -> None:
    message = EmailMessage()
    message["Subject"] = "Hostile"
    message["To"] = "victim@example.com"
    message.set_content("text part")
    message.add_alternative(
        '<html><head></head><body><p id="mark">untouched</p>'
        "<script>document.getElementById('mark').textContent = 'script ran';"
        "parent.document.title = 'script ran';</script>"
        "<img src=\"data:,\" onerror=\"document.getElementById('mark').textContent = 'handler ran'\">"
        "</body></html>",
        subtype="html",
    )
    database = server.database
    try:
        with database.engine.begin() as connection:
            connection.execute(
                insert(dev_mailbox).values(
                    received_at=datetime.now(UTC),
                    recipient="victim@example.com",
                    subject="Hostile",
                    raw=message.as_string(),
                )
            )
    finally:
        database.dispose()


@pytest.mark.parametrize("language", LANGUAGES)
def test_dev_mailbox_shows_the_html_part_inert_and_its_links_work(
    server: LiveServer,
    smtp: SmtpCapture,
    device: Device,
    language: str,
) -> None:
    address = "mail@example.com"
    server.add_user(address)
    sender = open_page(device, language)
    sender.goto("/signin")
    sender.locator("#email").fill(address)
    sender.locator("#email-form button[type=submit]").click()
    settle(sender, "#approval-number")
    smtp.wait_for(address)
    keep_in_dev_mailbox(server, smtp, address)
    hostile_message(server)

    reader = open_page(device, language)
    reader.goto("/dev/mailbox")
    reader.locator("#mailbox a", has_text="Hostile").click()
    frame = reader.frame_locator("#mail-html")
    expect(frame.locator("#mark")).to_have_text("untouched")
    assert "script ran" not in reader.title()
    sandbox = reader.locator("#mail-html").get_attribute("sandbox") or ""
    assert "allow-scripts" not in sandbox
    assert "allow-same-origin" not in sandbox

    reader.goto("/dev/mailbox")
    reader.locator("#mailbox a").filter(has_not_text="Hostile").first.click()
    frame = reader.frame_locator("#mail-html")
    expect(frame.locator("#code")).to_have_text(re.compile(r"^\d{6}$"))
    expect(reader.locator("#mail-text")).to_contain_text(frame.locator("#code").inner_text())
    frame.locator("#signin-link").click()
    expect(reader).to_have_url(re.compile(re.escape(server.url) + r"/signin/email/link\?token="))
    expect(reader.locator("#code-form, #confirm-form").first).to_be_visible()


@pytest.mark.parametrize("language", LANGUAGES)
def test_row_actions_of_passkeys_with_one_name_stay_distinct(
    server: LiveServer, smtp: SmtpCapture, device: Device, language: str
) -> None:
    """Two passkeys named after the same model: their Remove and Rename actions are told
    apart by their place in the table."""
    address = "twins@example.com"
    server.add_user(address)
    page = open_page(device, language)
    authenticator = VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)
    add_passkey(page)
    sign_out(page, server)
    page.locator("#passkey-button").click()  # adding a second needs a passkey sign-in
    settle(page, "#add-passkey")
    # Forget the first credential, so the authenticator makes a second of the same model.
    authenticator.cdp.send(
        "WebAuthn.removeCredential",
        {
            "authenticatorId": authenticator.id,
            "credentialId": authenticator.only_credential()["credentialId"],
        },
    )
    add_passkey(page)
    names = [
        row.locator("input[name=name]").input_value() for row in page.locator("tr.passkey").all()
    ]
    assert names[0] == names[1]

    removes = [link.get_attribute("aria-label") for link in page.locator("a.remove-passkey").all()]
    renames = [
        button.get_attribute("aria-label")
        for button in page.locator("tr.passkey button[type=submit]").all()
    ]
    assert len(set(removes)) == 2
    assert len(set(renames)) == 2
    assert removes == [
        WORDS[language]["remove"].replace("My laptop", f"{names[0]} ({place})") for place in (1, 2)
    ]
