"""The sign-in page offers password sign-in only while some account holds a password
that its migration mode (its own override, else the deployment's) lets it use."""

from __future__ import annotations

import bcrypt
import httpx

from tests.conftest import ServerFactory
from tests.support.passwords import import_with_password
from tests.support.server import LiveServer

LEGACY_HASH = "$2b$12$KIXQJdXh3ZLmjc1aV6VjUe1bqfWZJvYcqYf8mQe0fX3iYQm7R5f2a"


def _offered(server: LiveServer) -> bool:
    """Whether the sign-in page links to the password page, and that page is served."""
    with httpx.Client(base_url=server.url) as client:
        linked = 'id="password-link"' in client.get("/signin").text
        served = client.get("/signin/password").status_code
    assert served == (200 if linked else 303), "the link and the page agree"
    return linked


def test_password_link_only_when_an_account_holds_a_password(
    make_server: ServerFactory,
) -> None:
    fresh = make_server()
    with httpx.Client(base_url=fresh.url) as client:
        assert 'id="password-link"' not in client.get("/signin").text
        assert client.get("/signin/password").status_code == 303
    import_with_password(fresh, "pat@example.com", LEGACY_HASH)
    later = make_server()
    with httpx.Client(base_url=later.url) as client:
        assert 'id="password-link"' in client.get("/signin").text
        assert client.get("/signin/password").status_code == 200
    passwordless = make_server(migration_mode="passwordless")
    with httpx.Client(base_url=passwordless.url) as client:
        assert 'id="password-link"' not in client.get("/signin").text


def test_an_account_kept_on_passwords_by_its_override_gets_the_page(
    make_server: ServerFactory,
) -> None:
    """A passwordless deployment still offers the page and link when an account's own
    migration mode keeps its password (the API honours that override too)."""
    passwordless = make_server(migration_mode="passwordless")
    import_with_password(passwordless, "gil@example.com", LEGACY_HASH)
    assert not _offered(make_server(migration_mode="passwordless"))
    hashed = bcrypt.hashpw(b"legacy secret", bcrypt.gensalt(rounds=4)).decode()
    import_with_password(passwordless, "hal@example.com", hashed, mode="hybrid")
    server = make_server(migration_mode="passwordless")
    assert _offered(server)
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/signin/password")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post(
            "/signin/password",
            data={"csrf_token": csrf, "email": "hal@example.com", "password": "legacy secret"},
            headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin"},
        )
        assert response.status_code == 303, response.text
        assert client.get("/api/v1/session").json()["amr"] == ["pwd"]


def test_no_page_when_every_password_is_switched_off_by_its_override(
    make_server: ServerFactory,
) -> None:
    hybrid = make_server()
    import_with_password(hybrid, "ivy@example.com", LEGACY_HASH, mode="passwordless")
    assert not _offered(make_server())
    import_with_password(hybrid, "jan@example.com", LEGACY_HASH, mode="phase_out")
    assert _offered(make_server())
