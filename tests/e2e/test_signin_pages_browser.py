"""The sign-in pages as a person meets them (issue 7): what the wait page says, the
confirmation page, the signed-in notice, the error pages, in English and Japanese.

Real Chromium, real SMTP capture, both database backends, as in
``test_email_signin_browser.py`` (whose helpers these tests share).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import ServerFactory
from tests.e2e.conftest import Device
from tests.e2e.test_email_signin_browser import request_email
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, text_of

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
