"""The account page's "Recent activity" (``web/pages.py``): every row is worded in the
reader's language. Events written for operators and applications (tokens issued, a
pushed request, an attribute set) are not the holder's activity and are left out,
rather than shown under their internal names such as ``oidc.token.issued``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx

from sekisho.core.records import AuditEvent
from tests.support.passkeys import email_sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, text_of

ADDRESS = "hana@example.com"
INTERNAL_NAME = re.compile(r"\b[a-z_]+\.[a-z_]+(\.[a-z_]+)?\b")


def _activity(client: httpx.Client) -> str:
    """The text of the account page's activity table, where no internal name shows."""
    page = client.get("/account").text
    table = re.search(r'<table id="activity".*?</table>', page, re.DOTALL)
    assert table is not None, page
    text = re.sub(r"<[^>]+>", " ", table.group(0))
    assert INTERNAL_NAME.search(text) is None, text
    return text


def test_recent_activity_is_worded_in_the_readers_language(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user(ADDRESS)
    with server.client(cookies={"sekisho_lang": "ja"}) as holder, server.client() as stranger:
        email_sign_in(server, smtp, holder, ADDRESS)
        wrong = {"email": ADDRESS, "code": "AAAA-BBBB-CCCC-DDDD"}
        refused = stranger.post(
            "/api/v1/signin/recovery/operator", json=wrong, headers={"Origin": server.url}
        )
        assert refused.status_code == 400, refused.text
        activity = _activity(holder)
    assert "担当者から受け取ったコードを拒否" in activity


def test_events_written_for_others_neither_show_nor_push_the_holders_off(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """Twenty-five tokens issued to applications after a sign-in (twenty rows are
    shown) leave the sign-in on the list."""
    server.add_user(ADDRESS)
    with server.client() as holder:
        email_sign_in(server, smtp, holder, ADDRESS)
        database = server.database
        try:
            with database.transaction() as repos:
                user = repos.users.by_email(ADDRESS)
                assert user is not None
                for _ in range(25):
                    issued = AuditEvent(
                        event="oidc.token.issued",
                        outcome="success",
                        at=datetime.now(UTC),
                        user_id=user.id,
                        email=ADDRESS,
                    )
                    repos.audit.append(issued)
        finally:
            database.dispose()
        activity = _activity(holder)
    assert "Signed in" in activity


def test_an_address_given_up_does_not_bring_its_old_accounts_activity(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """An account moved to a new address keeps its history to itself: whoever is later
    given the old address sees no sign-in of the earlier holder (times, addresses)."""
    server.add_user(ADDRESS)
    with server.client() as earlier:
        email_sign_in(server, smtp, earlier, ADDRESS)
        asked = earlier.post("/api/v1/account/email", json={"email": "hana.new@example.com"})
        assert asked.status_code == 202, asked.text
        text = text_of(smtp.wait_for("hana.new@example.com"))
        token = re.search(r"/account/email/confirm\?token=([A-Za-z0-9_-]+)", text)
        assert token is not None, text
        moved = earlier.post("/api/v1/account/email/link", json={"token": token.group(1)})
        assert moved.status_code == 200, moved.text
    server.add_user(ADDRESS)
    with server.client() as later:
        email_sign_in(server, smtp, later, ADDRESS)
        activity = _activity(later)
    assert activity.count("Signed in") == 1, activity
