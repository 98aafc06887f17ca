"""The sign-in pages' own POSTs over real HTTP: resend and "This wasn't me" (issue 7).

Resend must keep the send limits and never reset the per-address failure count;
"This wasn't me" needs the CSRF token like every POST and is audited.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.browser import FLOW, FormBrowser
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code


def _token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def _flow_state(server: LiveServer, flow: str) -> str:
    with server.database.engine.connect() as connection:
        return str(
            connection.execute(
                text("SELECT state FROM flows WHERE id = :f"), {"f": flow}
            ).scalar_one()
        )


def test_resend_keeps_the_send_limit_and_the_failure_count(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(email_resend_cooldown=timedelta(0), limit_sends_per_address="2/hour")
    server.add_user("oto@example.com")
    browser = FormBrowser(server.url)
    try:
        flow = browser.request_email("oto@example.com")
        _link, code = link_and_code(smtp.wait_for("oto@example.com"))
        wrong = "000000" if code != "000000" else "111111"
        assert browser.post("/signin/email/code", {"flow": flow, "code": wrong}).status_code == 400
        resent = browser.post("/signin/email/resend", {"flow": flow})
        assert resent.status_code == 303, resent.text
        match = FLOW.search(resent.headers["location"])
        assert match is not None
        second = match.group(1)
        assert second != flow
        assert _flow_state(server, flow) == "superseded"
        smtp.wait_for("oto@example.com", 2)
        refused = browser.post("/signin/email/resend", {"flow": second})
        assert refused.status_code == 429
        assert "rate_limited" in refused.text
        assert _flow_state(server, second) == "pending"
        with server.database.engine.connect() as connection:
            consecutive = connection.execute(
                text("SELECT consecutive FROM failure_counters")
            ).scalar_one()
        assert consecutive == 1
        stranger = FormBrowser(server.url)
        try:  # another browser cannot resend someone's flow
            assert stranger.post("/signin/email/resend", {"flow": second}).status_code == 400
        finally:
            stranger.close()
    finally:
        browser.close()


def test_resend_waits_for_the_cooldown(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("ren@example.com")
    browser = FormBrowser(server.url)
    try:
        flow = browser.request_email("ren@example.com")
        early = browser.post("/signin/email/resend", {"flow": flow})
        assert early.status_code == 429
        assert int(early.headers["retry-after"]) > 0
        assert _flow_state(server, flow) == "pending"
    finally:
        browser.close()


def test_this_was_not_me_needs_csrf_and_is_audited(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("sai@example.com")
    waiting = FormBrowser(server.url)
    phone = FormBrowser(server.url)
    try:
        flow = waiting.request_email("sai@example.com")
        link, code = link_and_code(smtp.wait_for("sai@example.com"))
        phone.csrf()  # the CSRF cookie is there; the form lacks the token
        forged = phone.http.post(
            "/signin/email/link/deny",
            data={"token": _token(link)},
            headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        )
        assert forged.status_code == 403
        assert _flow_state(server, flow) == "pending"
        denied = phone.post("/signin/email/link/deny", {"token": _token(link)})
        assert denied.status_code == 200
        assert _flow_state(server, flow) == "denied"
        with server.database.engine.connect() as connection:
            events = connection.execute(
                text(
                    "SELECT outcome, flow_id FROM audit_events WHERE event = 'signin.email.denied'"
                )
            ).all()
        assert [tuple(row) for row in events] == [("success", flow)]
        assert waiting.post("/signin/email/code", {"flow": flow, "code": code}).status_code == 400
        assert waiting.post("/signin/email/link", {"token": _token(link)}).status_code == 400
        assert not waiting.signed_in()
    finally:
        waiting.close()
        phone.close()


def test_a_wrong_code_and_the_tries_left_read_as_one_message_in_each_language(
    server: LiveServer,
) -> None:
    """English sentences are separated by a space; Japanese ones follow 。 directly."""
    expected = {
        "en": '<p class="error" role="alert" id="error">That code is not correct. <span',
        "ja": '<p class="error" role="alert" id="error">確認コードが正しくありません。<span',
    }
    for language, start in expected.items():
        browser = FormBrowser(server.url)
        try:
            browser.http.cookies.set("sekisho_lang", language)
            flow = browser.request_email(f"{language}@example.com")
            wrong = browser.post("/signin/email/code", {"flow": flow, "code": "000000"})
            assert wrong.status_code == 400
            assert start in wrong.text
        finally:
            browser.close()
