"""Email sign-in over real HTTP, with the mail read from a real SMTP server."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from tests.support.browser import FormBrowser
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

Browsers = Callable[..., FormBrowser]


def _path(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def test_same_browser_link_signs_in(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("alice@example.com")
    browser = browsers()
    browser.request_email("Alice@Example.com")
    link, _code = link_and_code(smtp.wait_for("alice@example.com"))
    assert link.startswith(server.url + "/signin/email/link?token=")
    page = browser.http.get(_path(link))
    assert page.status_code == 200
    assert 'action="/signin/email/link"' in page.text
    token = urlsplit(link).query.removeprefix("token=")
    response = browser.post("/signin/email/link", {"token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    session = browser.http.get("/api/v1/session").json()
    assert session["amr"] == ["email"]
    assert session["aal"] == 1
    account = browser.http.get("/account")
    assert "alice@example.com" in account.text


def test_code_signs_in_the_waiting_browser(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("bob@example.com")
    browser = browsers()
    flow = browser.request_email("bob@example.com")
    _link, code = link_and_code(smtp.wait_for("bob@example.com"))
    response = browser.post("/signin/email/code", {"flow": flow, "code": code})
    assert response.status_code == 303, response.text
    assert browser.signed_in()
