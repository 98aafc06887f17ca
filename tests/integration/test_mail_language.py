"""Emails and the confirmation page speak the reader's language throughout: the
requesting device in words of that language, and times in a zone the email names."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.authenticator import SoftAuthenticator
from tests.support.browser import FormBrowser
from tests.support.passkeys import email_sign_in, register
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, html_of, link_and_code, text_of

LINUX_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
JAPANESE_TIME = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日 \d{1,2}:\d{2}（日本時間）")  # noqa: RUF001
ENGLISH_TIME = re.compile(r"[A-Z][a-z]+ \d{1,2}, \d{4}, \d{1,2}:\d{2}\s[AP]M UTC")


@pytest.mark.parametrize(
    ("language", "device", "time"),
    [("ja", "Linux 上の Chrome", JAPANESE_TIME), ("en", "Chrome on Linux", ENGLISH_TIME)],
)
def test_signin_email_names_device_and_zoned_time_in_the_readers_language(
    server: LiveServer, smtp: SmtpCapture, language: str, device: str, time: re.Pattern[str]
) -> None:
    server.add_user("aiko@example.com")
    browser = FormBrowser(server.url, user_agent=LINUX_CHROME)
    try:
        browser.http.headers["Accept-Language"] = language
        browser.request_email("aiko@example.com")
    finally:
        browser.close()
    message = smtp.wait_for("aiko@example.com")
    for body in (text_of(message), html_of(message)):
        assert device in body, body
        assert time.search(body), body


def test_notice_email_names_device_and_time_in_japanese(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("kenta@example.com")
    headers = {"Accept-Language": "ja", "User-Agent": LINUX_CHROME}
    with httpx.Client(base_url=server.url, headers=headers) as laptop:
        email_sign_in(server, smtp, laptop, "kenta@example.com")
        assert register(server, laptop, SoftAuthenticator()).status_code == 201
    notice = text_of(smtp.wait_for("kenta@example.com", 2))
    assert "Linux 上の Chrome" in notice, notice
    assert JAPANESE_TIME.search(notice), notice
    assert "UTC" not in notice


def test_link_page_names_device_in_japanese_and_time_for_the_browser(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("yui@example.com")
    asking = FormBrowser(server.url, user_agent=LINUX_CHROME)
    phone = FormBrowser(server.url)
    try:
        asking.request_email("yui@example.com")
        link, _code = link_and_code(smtp.wait_for("yui@example.com"))
        parts = urlsplit(link)
        page = phone.http.get(f"{parts.path}?{parts.query}", headers={"Accept-Language": "ja"}).text
    finally:
        asking.close()
        phone.close()
    requested = page.split('class="requested">')[1].split("</p>")[0]
    assert "Linux 上の Chrome" in requested, requested
    assert re.search(
        r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"[^>]*>[^<]+ UTC</time>', requested
    )
