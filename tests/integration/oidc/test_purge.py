"""``sekisho db purge`` removes the OpenID Connect artefacts nobody can use any more
(store/maintenance.py) and keeps those of live sessions."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from tests.support.cli import run_sekisho
from tests.support.oidc import (
    authorize_url,
    code_for,
    exchange,
    register_client,
    signed_in_browser,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _count(server: LiveServer, table: str) -> int:
    with server.database.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_purge_removes_spent_oidc_rows_and_keeps_a_live_sessions_grant(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server)
    ended = signed_in_browser(server, smtp, "gone@example.com")
    live = signed_in_browser(server, smtp, "here@example.com")
    for browser in (ended, live):
        answer = exchange(server, registered, code_for(browser, registered.client_id))
        assert answer.status_code == 200, answer.text
    ended.post("/signout", {})
    with server.client() as anonymous:
        waiting = anonymous.get(authorize_url(registered.client_id))
        assert waiting.status_code == 303, waiting.text
    assert (_count(server, "oidc_grants"), _count(server, "oidc_pending_requests")) == (2, 1)
    with server.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE sessions SET revoked_at = :old WHERE revoked_at IS NOT NULL"),
            {"old": LONG_AGO},
        )
        for table in ("oidc_pending_requests", "oidc_codes"):
            connection.execute(text(f"UPDATE {table} SET expires_at = :old"), {"old": LONG_AGO})

    result = run_sekisho(server.settings.database_url, "db", "purge", "--older-than-days", "30")

    assert result.returncode == 0, result.stderr
    counts = dict(line.split("\t") for line in result.stdout.splitlines())
    assert counts["sessions"] == "1"
    assert counts["oidc_pending_requests"] == "1"
    assert counts["oidc_codes"] == "2"
    assert (counts["oidc_grants"], counts["oidc_access_tokens"]) == ("1", "1")
    assert _count(server, "oidc_grants") == 1
    assert _count(server, "oidc_access_tokens") == 1
