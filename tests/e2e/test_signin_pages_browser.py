"""The sign-in pages as a person meets them (issue 7): what the wait page says, the
confirmation page, the signed-in notice, the error pages, in English and Japanese.

Real Chromium, real SMTP capture, both database backends, as in
``test_email_signin_browser.py`` (whose helpers these tests share).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_email_signin_browser import (
    WAIT_URL,
    emailed,
    expect_account,
    expect_not_signed_in,
    request_email,
    settle,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code, text_of

pytestmark = pytest.mark.browser


@pytest.fixture
def server(make_server: ServerFactory, request: pytest.FixtureRequest) -> LiveServer:
    """The default server, or one with the settings given by indirect parametrisation."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    return make_server(**overrides)


# -- defect 8: minutes rounded up, with plural forms -----------------------------------


@pytest.mark.parametrize("server", [{"email_link_ttl": timedelta(seconds=60)}], indirect=True)
def test_one_minute_is_singular_on_the_page_and_in_the_email(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    server.add_user("one@example.com")
    page = device()
    request_email(page, "one@example.com")
    expect(page.locator("#sent-to")).to_contain_text("It expires in 1 minute.")
    mail = text_of(smtp.wait_for("one@example.com"))
    assert "expire in 1 minute." in mail, mail
    assert "minutes" not in mail


@pytest.mark.parametrize("server", [{"email_link_ttl": timedelta(seconds=90)}], indirect=True)
def test_part_of_a_minute_rounds_up_in_japanese(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    server.add_user("hanako@example.jp")
    page = device(locale="ja-JP")
    request_email(page, "hanako@example.jp")
    expect(page.locator("#sent-to")).to_contain_text("有効期限は2分です。")
    mail = text_of(smtp.wait_for("hanako@example.jp"))
    assert "有効期限は2分です。" in mail, mail


def wrong_code(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def type_code(page: Page, code: str) -> None:
    """Type a code that the wait page refuses (six digits submit the form by themselves),
    and wait for the answer: the page again, with an empty field."""
    page.wait_for_load_state("load")  # wait.js is running
    field = page.locator("#code-form #code")
    with page.expect_response(re.compile(r"/signin/email/code$")):
        field.fill(code)
    expect(field).to_have_value("")
    page.wait_for_load_state("load")


def audit_count(server: LiveServer, event: str) -> int:
    with server.database.engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM audit_events WHERE event = :e"), {"e": event}
            ).scalar_one()
        )


# -- the wait page -----------------------------------------------------------------------


def test_wait_page_names_the_masked_address_and_focuses_the_code(
    server: LiveServer, device: Device
) -> None:
    page = device()
    request_email(page, "Nobody.Here@Example.com")  # no account: the page is the same
    expect(page.locator("#sent-to")).to_contain_text("If n•••@example.com can be used")
    code = page.locator("#code-form #code")
    expect(code).to_be_focused()
    expect(code).to_have_attribute("autocomplete", "one-time-code")
    expect(page.locator("#approval-number")).to_have_attribute("aria-describedby", "number-caption")
    expect(page.locator("#number-caption")).to_have_text(
        "Type this number on your other device when it asks."
    )


@pytest.mark.parametrize(
    ("locale", "tries", "burned"),
    [
        ("en-GB", "4 tries left.", "Too many wrong codes: this code no longer works."),
        ("ja-JP", "あと4回入力できます。", "確認コードを何度も間違えたため"),
    ],
)
def test_wrong_codes_say_tries_left_then_that_the_link_still_works(
    server: LiveServer, smtp: SmtpCapture, device: Device, locale: str, tries: str, burned: str
) -> None:
    """Defect 7: after five wrong codes the page says so, and the link in the same email
    does still sign in from this browser."""
    address = "gin@example.com"
    server.add_user(address)
    page = device(locale=locale)
    request_email(page, address)
    link, code = emailed(smtp, server, address)

    type_code(page, wrong_code(code))
    error = page.locator("#error")
    expect(error).to_contain_text(tries)
    field = page.locator("#code-form #code")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "error")
    for _ in range(4):
        type_code(page, wrong_code(code))
    expect(error).to_contain_text(burned)
    expect(page.locator("#attempts-left")).to_have_count(0)
    expect(page.locator("#message[data-error]")).to_have_count(0)

    page.goto(link)
    settle(page, "#confirm-form")
    page.locator("#confirm-form button[type=submit]").click()
    expect_account(page, server, address)


@pytest.mark.parametrize("server", [{"email_resend_cooldown": timedelta(0)}], indirect=True)
def test_resend_supersedes_the_email_and_keeps_the_failure_count(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    address = "hal@example.com"
    server.add_user(address)
    page = device()
    request_email(page, address)
    _link, first = emailed(smtp, server, address)
    type_code(page, wrong_code(first))
    expect(page.locator("#attempts-left")).to_have_text("4 tries left.")
    type_code(page, wrong_code(first))
    expect(page.locator("#attempts-left")).to_have_text("3 tries left.")

    page.locator("#resend-button").click()
    expect(page.locator("#resent")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/signin/email/wait\?flow=[^&]+&resent=1$"))
    _link, second = link_and_code(smtp.wait_for(address, 2))
    type_code(page, wrong_code(second))
    expect(page.locator("#attempts-left")).to_have_text("4 tries left.")  # per email
    with server.database.engine.connect() as connection:
        consecutive = connection.execute(
            text("SELECT consecutive FROM failure_counters")
        ).scalar_one()
    assert consecutive == 3  # per address: the resend did not reset it
    if first != second:
        type_code(page, first)  # the earlier email no longer works
        expect(page.locator("#error")).to_be_visible()
    page.locator("#code-form #code").fill(second)
    expect_account(page, server, address)


def test_resend_waits_for_its_cooldown(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    address = "ida@example.com"
    server.add_user(address)
    page = device()
    request_email(page, address)
    emailed(smtp, server, address)
    button = page.locator("#resend-button")
    expect(button).to_be_disabled()
    expect(page.locator("#resend-wait")).to_have_text(
        re.compile(r"^You can ask for a new email in \d+ s\.$")
    )
    # On a line of its own under the button, not wrapped around it on a phone.
    button_box, wait_box = button.bounding_box(), page.locator("#resend-wait").bounding_box()
    assert button_box
    assert wait_box
    assert wait_box["y"] >= button_box["y"] + button_box["height"]
    # Forcing the form early is refused by the server, and sends nothing.
    page.evaluate("document.getElementById('resend-form').submit()")
    expect(page.locator("#message")).to_have_attribute("data-error", "rate_limited")
    expect(page.locator("h1")).to_have_text("Too many attempts")
    assert len(smtp.to(address)) == 1


def test_finishing_in_another_tab_takes_the_waiting_tab_to_the_account(
    server: LiveServer, smtp: SmtpCapture, device: Device
) -> None:
    address = "jun@example.com"
    server.add_user(address)
    waiting = device()
    request_email(waiting, address)
    link, _code = emailed(smtp, server, address)
    tab = waiting.context.new_page()
    tab.goto(link)
    settle(tab, "#confirm-form")
    tab.locator("#confirm-form button[type=submit]").click()
    expect_account(tab, server, address)
    expect(waiting).to_have_url(server.url + "/account")
    expect(waiting.locator("#account-email")).to_have_text(address)


# -- signed-in people ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "notice", "other"),
    [
        ("en-GB", "You are signed in as kai@example.com.", "Use another account"),
        ("ja-JP", "kai@example.com としてサインインしています。", "別のアカウントを使う"),
    ],
)
def test_signed_in_people_are_told_so_never_shown_an_error(
    server: LiveServer, smtp: SmtpCapture, device: Device, locale: str, notice: str, other: str
) -> None:
    address = "kai@example.com"
    server.add_user(address)
    waiting = device(locale=locale)
    request_email(waiting, address)
    wait_url = waiting.url
    link, _code = emailed(smtp, server, address)
    tab = waiting.context.new_page()
    tab.goto(link)
    settle(tab, "#confirm-form")
    tab.locator("#confirm-form button[type=submit]").click()
    expect_account(tab, server, address)

    tab.go_back()  # Back after signing in: the confirmation page (no-store) again
    expect(tab.locator("#signed-in-text")).to_have_text(notice)
    expect(tab.locator("#message[data-error]")).to_have_count(0)
    tab.goto(link)  # the used link, again
    expect(tab.locator("#signed-in-text")).to_have_text(notice)
    # The waiting tab sees its flow finish in this browser and moves on by itself; asked
    # for another page before then, its own navigation would cut the test's short.
    expect_account(waiting, server, address)
    waiting.goto(wait_url)  # the wait page of the finished flow, again
    expect(waiting.locator("#signed-in-text")).to_have_text(notice)
    waiting.goto("/signin")
    expect(waiting.locator("#signed-in-text")).to_have_text(notice)
    expect(waiting.locator("#continue-link")).to_have_attribute("href", "/account")

    waiting.get_by_role("button", name=other).click()
    expect(waiting).to_have_url(server.url + "/signin")
    expect(waiting.locator("#signed-in")).to_have_count(0)
    expect_not_signed_in(waiting, server)


def test_the_notice_signs_nobody_in(server: LiveServer, smtp: SmtpCapture, device: Device) -> None:
    address = "lea@example.com"
    server.add_user(address)
    waiting = device()
    request_email(waiting, address)
    link, code = emailed(smtp, server, address)
    waiting.locator("#code-form #code").fill(code)
    expect_account(waiting, server, address)
    stranger = device()
    stranger.goto(link)
    expect(stranger.locator("#message")).to_have_attribute("data-error", "invalid_or_expired")
    expect(stranger.locator("#signed-in")).to_have_count(0)
    expect_not_signed_in(stranger, server)


# -- the confirmation page -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "account", "cancelled"),
    [
        ("en-GB", "This signs in to the account m•••@example.com.", "Sign-in cancelled"),
        ("ja-JP", "アカウント m•••@example.com にサインインします。", "サインインを取り消しました"),
    ],
)
def test_this_was_not_me_ends_the_flow_and_is_audited(
    server: LiveServer,
    smtp: SmtpCapture,
    device: Device,
    locale: str,
    account: str,
    cancelled: str,
) -> None:
    address = "mio@example.com"
    server.add_user(address)
    waiting = device(locale=locale)
    request_email(waiting, address)
    link, code = emailed(smtp, server, address)

    phone = device(locale=locale)
    phone.goto(link)
    settle(phone, "#deny-form")
    expect(phone.locator("#signs-in-to")).to_have_text(account)
    phone.locator("#deny-form button[type=submit]").click()
    expect(phone.locator("h1")).to_have_text(cancelled)
    assert audit_count(server, "signin.email.denied") == 1

    status = waiting.locator("#flow-status")
    denied = status.get_attribute("data-denied")
    assert denied
    expect(status).to_have_text(denied)
    waiting.locator("#code-form #code").fill(code)
    expect(waiting.locator("#message")).to_have_attribute("data-error", "invalid_or_expired")
    expect_not_signed_in(waiting, server)
    phone.goto(link)
    expect(phone.locator("#message")).to_have_attribute("data-error", "invalid_or_expired")


# -- error pages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "gone", "missing"),
    [
        ("en-GB", "This link or code no longer works", "Page not found"),
        ("ja-JP", "このリンクまたは確認コードはもう使えません", "ページが見つかりません"),
    ],
)
def test_error_pages_name_what_happened(
    server: LiveServer, device: Device, locale: str, gone: str, missing: str
) -> None:
    page = device(locale=locale)
    page.goto("/signin/email/link?token=not-a-real-token")
    expect(page.locator("h1")).to_have_text(gone)
    page.goto("/no/such/page")
    expect(page.locator("h1")).to_have_text(missing)
    expect(page.locator("#message")).to_have_attribute("data-error", "not_found")


def test_a_bad_address_is_tied_to_its_field(server: LiveServer, device: Device) -> None:
    page = device()
    page.goto("/signin")
    page.locator("#email").evaluate("field => field.type = 'text'")  # skip the browser's check
    page.locator("#email").fill("not an address")
    page.locator("#email-form button[type=submit]").click()
    field = page.locator("#email")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "error")
    expect(page.locator("#error")).to_be_visible()
    expect(page).not_to_have_url(WAIT_URL)
