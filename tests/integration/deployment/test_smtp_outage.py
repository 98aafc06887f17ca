"""SMTP down for longer than a link's lifetime (SECURITY.md case 43; docs/deployment.md,
"When a dependency is down").

The person waiting is told, on the wait page (English and Japanese) and in the flow
status of the JSON API, that sign-in email is delayed; the answer is the same for an
address without an account (case 10). When the sign-in expires before the mail server
comes back, its message is dropped, not sent late with a dead link and code, and not
silently: a warning in the log, ``last_error`` on the message and a ``mail.dropped``
audit event. Once the server is back, the next sign-in email is delivered and the
status says so.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.browser import FormBrowser
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

pytestmark = pytest.mark.deployment

NOTICE = re.compile(r'<p id="mail-delayed" role="status"( hidden)?>([^<]*)</p>')


def _status_until(
    browser: FormBrowser, flow: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The flow's status, polled as the wait page does, once ``done`` holds."""
    deadline = time.monotonic() + 30
    while True:
        response = browser.http.get(f"/api/v1/signin/email/flows/{flow}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def _notice(browser: FormBrowser, flow: str, language: str) -> tuple[bool, str]:
    """Whether the wait page shows its delay notice, and the notice's text."""
    page = browser.http.get(
        f"/signin/email/wait?flow={flow}", headers={"Accept-Language": language}
    )
    assert page.status_code == 200, page.text
    match = NOTICE.search(page.text)
    assert match is not None, page.text
    return match.group(1) is None, match.group(2)


def _outbox(server: LiveServer) -> list[tuple[str, int, str | None]]:
    with server.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, attempts, last_error FROM outbox ORDER BY id")
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def test_the_person_is_told_and_the_expired_email_is_dropped_not_lost(
    make_server: ServerFactory, smtp: SmtpCapture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sekisho.mail")
    smtp.stop()
    server = make_server(email_link_ttl="PT8S")
    server.add_user("noa@example.com")
    person, stranger = FormBrowser(server.url), FormBrowser(server.url)
    flow = person.request_email("noa@example.com")
    status = _status_until(person, flow, lambda body: body["email_delivery"] == "delayed")
    assert status["state"] == "pending"
    shown, english = _notice(person, flow, "en")
    assert shown
    assert english.startswith("Sign-in emails are delayed right now")
    shown, japanese = _notice(person, flow, "ja")
    assert shown
    assert "送信が遅れています" in japanese
    # Somebody without an account is told exactly the same (no email is ever sent).
    other = stranger.request_email("nobody@example.com")
    assert _status_until(stranger, other, lambda _body: True)["email_delivery"] == "delayed"
    assert _notice(stranger, other, "en") == (True, english)

    _status_until(person, flow, lambda body: body["state"] == "expired")
    deadline = time.monotonic() + 30
    while _outbox(server)[0][0] == "pending":
        assert time.monotonic() < deadline, _outbox(server)
        time.sleep(0.1)
    (status_, attempts, last_error), stranger_row = _outbox(server)
    assert status_ == "dropped"
    assert attempts >= 2
    assert last_error is not None
    assert last_error.startswith("undelivered: dropped (flow_ended)")
    assert stranger_row == ("dropped", 1, None)
    assert any("dropped undelivered" in record.getMessage() for record in caplog.records)
    with server.database.engine.connect() as connection:
        details = connection.execute(
            text("SELECT detail FROM audit_events WHERE event = 'mail.dropped' ORDER BY id")
        ).scalars()
        reasons = [json.loads(detail)["reason"] for detail in details]
    assert reasons == ["no_account", "flow_ended"]

    smtp.start()
    again = person.request_email("noa@example.com")
    smtp.wait_for("noa@example.com")
    assert _status_until(person, again, lambda body: body["email_delivery"] == "normal")
    assert _notice(person, again, "en")[0] is False
    assert len(smtp.to("noa@example.com")) == 1  # the expired sign-in's email never went
    person.close()
    stranger.close()
