"""Recovery codes over HTTP: making a set from the account page and reading it back."""

from __future__ import annotations

import re
import time
from email.message import EmailMessage

from tests.support.browser import FormBrowser
from tests.support.smtp import SmtpCapture

CODE = re.compile(r"<code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code>")


def generate_codes(browser: FormBrowser) -> list[str]:
    """Make a new set from the account page's form; the codes shown once."""
    response = browser.post("/account/recovery-codes", {})
    assert response.status_code == 200, response.text
    codes = CODE.findall(response.text)
    assert len(codes) == 10, response.text
    return codes


def recover(browser: FormBrowser, email: str, code: str) -> int:
    """Submit the recovery form; the status (303 into a recovery session, else 4xx)."""
    return browser.post("/signin/recovery", {"email": email, "code": code}).status_code


def wait_for_subject(
    smtp: SmtpCapture, address: str, subject: str, timeout: float = 10.0
) -> EmailMessage:
    """The first message to ``address`` whose subject is ``subject`` (waiting for the
    outbox worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in smtp.to(address):
            if str(message["Subject"]) == subject:
                return message
        time.sleep(0.05)
    subjects = [str(message["Subject"]) for message in smtp.to(address)]
    raise AssertionError(f"no message '{subject}' to {address} within {timeout}s: {subjects}")


def subjects(smtp: SmtpCapture, address: str) -> list[str]:
    return [str(message["Subject"]) for message in smtp.to(address)]
