"""An access token ends with its client and its user (issue 9: "tokens end when ... the
user is disabled, or the client is removed"): /userinfo refuses it with RFC 6750's
``invalid_token`` once the client is removed (also when a client with the same id is
registered again) or the account is disabled, though its ``exp`` is still ahead."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.cli import run_sekisho
from tests.support.oidc import (
    add_client_by_cli,
    code_for,
    exchange,
    register_client,
    signed_in_browser,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture


def _userinfo(server: LiveServer, access_token: str) -> tuple[int, str]:
    with server.client() as http:
        answer = http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    return answer.status_code, answer.headers.get("www-authenticate", "")


@pytest.mark.parametrize(
    "ending", ["client_removed", "client_added_again", "user_disabled", "status_only"]
)
def test_userinfo_refuses_the_access_token_once_its_client_or_user_ends(
    server: LiveServer, smtp: SmtpCapture, ending: str
) -> None:
    email = f"{ending.replace('_', '')}@example.com"
    registered = register_client(server)
    browser = signed_in_browser(server, smtp, email)
    try:
        code = code_for(browser, registered.client_id)
    finally:
        browser.close()
    tokens = exchange(server, registered, code)
    assert tokens.status_code == 200, tokens.text
    access_token = tokens.json()["access_token"]
    assert _userinfo(server, access_token)[0] == 200
    url = server.settings.database_url

    if ending in ("client_removed", "client_added_again"):
        assert run_sekisho(url, "clients", "remove", registered.client_id).returncode == 0
    if ending == "client_added_again":
        again = add_client_by_cli(server, "--client-id", registered.client_id)
        assert again.client_id == registered.client_id
    elif ending == "user_disabled":
        assert run_sekisho(url, "users", "disable", email).returncode == 0
    elif ending == "status_only":  # the account's status alone, its session untouched
        with server.database.engine.begin() as connection:
            connection.execute(text("UPDATE users SET status = 'disabled'"))

    status, challenge = _userinfo(server, access_token)
    assert status == 401
    assert 'error="invalid_token"' in challenge
