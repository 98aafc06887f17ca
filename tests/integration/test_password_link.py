"""The sign-in page offers password sign-in only while some account holds a password."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from sekisho.core.records import User
from tests.conftest import ServerFactory
from tests.support.server import LiveServer

LEGACY_HASH = "$2b$12$KIXQJdXh3ZLmjc1aV6VjUe1bqfWZJvYcqYf8mQe0fX3iYQm7R5f2a"


def _with_password(server: LiveServer, email: str) -> None:
    database = server.database
    now = datetime.now(UTC)
    with database.transaction() as repos:
        repos.users.save_imported(
            User(id="legacy-1", email=email, status="active", created_at=now, imported_at=now)
        )
        repos.passwords.put("legacy-1", hash=LEGACY_HASH, scheme="bcrypt", now=now)
    database.dispose()


def test_password_link_only_when_an_account_holds_a_password(
    make_server: ServerFactory,
) -> None:
    fresh = make_server()
    with httpx.Client(base_url=fresh.url) as client:
        assert 'id="password-link"' not in client.get("/signin").text
        assert client.get("/signin/password").status_code == 303
    _with_password(fresh, "pat@example.com")
    later = make_server()
    with httpx.Client(base_url=later.url) as client:
        assert 'id="password-link"' in client.get("/signin").text
        assert client.get("/signin/password").status_code == 200
    passwordless = make_server(migration_mode="passwordless")
    with httpx.Client(base_url=passwordless.url) as client:
        assert 'id="password-link"' not in client.get("/signin").text
