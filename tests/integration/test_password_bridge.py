"""The legacy password as a bridge, over real HTTP (SECURITY.md cases 23-25)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import bcrypt
import httpx
import pytest
from sqlalchemy import text

from sekisho.core.records import User
from sekisho.methods.password.hashes import scheme_of
from tests.conftest import ServerFactory
from tests.support.authenticator import SoftAuthenticator
from tests.support.passkeys import email_sign_in, register
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

ASPNET_V3 = "AQAAAAIAACcQAAAAEAABAgMEBQYHCAkKCwwNDg9B0Oxwty+PGIDSp95gcCfzeDvA4sGapUIUov8usXfD6A=="
ASPNET_PASSWORD = "my password"


def _import(server: LiveServer, email: str, stored: str, mode: str | None = None) -> str:
    database = server.database
    now = datetime.now(UTC)
    user_id = f"legacy-{email.split('@')[0]}"
    with database.transaction() as repos:
        repos.users.save_imported(
            User(
                id=user_id,
                email=email,
                status="active",
                created_at=now,
                migration_mode=mode,
                imported_at=now,
            )
        )
        scheme = scheme_of(stored)
        assert scheme is not None
        repos.passwords.put(user_id, hash=stored, scheme=scheme, now=now)
    database.dispose()
    return user_id


def _stored(server: LiveServer, user_id: str) -> str | None:
    with server.database.engine.connect() as connection:
        return connection.execute(
            text("SELECT hash FROM passwords WHERE user_id = :u"), {"u": user_id}
        ).scalar()


def _login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/api/v1/signin/password", json={"email": email, "password": password})


def test_case23_correct_legacy_password_signs_in_and_rehashes(server: LiveServer) -> None:
    user_id = _import(server, "aki@example.jp", ASPNET_V3)
    with httpx.Client(base_url=server.url) as client:
        wrong = _login(client, "aki@example.jp", "my Password")
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "invalid_credentials"
        assert _stored(server, user_id) == ASPNET_V3
        right = _login(client, "aki@example.jp", ASPNET_PASSWORD)
        assert right.status_code == 200, right.text
        assert right.json()["amr"] == ["pwd"]
        assert right.json()["aal"] == 1
    rehashed = _stored(server, user_id)
    assert rehashed is not None
    assert rehashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    with httpx.Client(base_url=server.url) as client:
        assert _login(client, "aki@example.jp", ASPNET_PASSWORD).status_code == 200


def test_case24_unknown_and_wrong_look_the_same(server: LiveServer) -> None:
    _import(
        server, "ben@example.com", bcrypt.hashpw(b"old secret", bcrypt.gensalt(rounds=4)).decode()
    )
    server.add_user("nopass@example.com")
    with httpx.Client(base_url=server.url) as client:
        answers = [
            _login(client, "ben@example.com", "wrong"),
            _login(client, "nobody@example.com", "wrong"),
            _login(client, "nopass@example.com", "wrong"),
            _login(client, "not an address", "wrong"),
        ]
    assert {response.status_code for response in answers} == {400}
    assert len({response.text for response in answers}) == 1


def test_case25_long_passwords_work_and_huge_ones_are_refused_fast(server: LiveServer) -> None:
    password = "p" * 64
    _import(
        server,
        "cy@example.com",
        bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode(),
    )
    with httpx.Client(base_url=server.url) as client:
        assert _login(client, "cy@example.com", password).status_code == 200
        too_long = _login(client, "cy@example.com", "x" * 1025)
        assert too_long.status_code == 422
        huge = client.post(
            "/api/v1/signin/password",
            content=b'{"email": "cy@example.com", "password": "' + b"x" * 1_000_000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert huge.status_code == 413


def test_phase_out_deletes_the_password_after_email_or_passkey(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(migration_mode="phase_out")
    by_email = _import(server, "dee@example.com", ASPNET_V3)
    by_passkey = _import(server, "eve@example.com", ASPNET_V3)
    with httpx.Client(base_url=server.url) as client:
        assert _login(client, "dee@example.com", ASPNET_PASSWORD).status_code == 200
        assert _stored(server, by_email) is not None
        email_sign_in(server, smtp, client, "dee@example.com")
    assert _stored(server, by_email) is None
    with httpx.Client(base_url=server.url) as client:
        assert _login(client, "dee@example.com", ASPNET_PASSWORD).status_code == 400
    # eve signed in by email while the deployment was still hybrid (password kept);
    # after the switch to phase_out, adding a passkey retires the password.
    hybrid = make_server(migration_mode="hybrid")
    with httpx.Client(base_url=hybrid.url) as client:
        email_sign_in(hybrid, smtp, client, "eve@example.com")
        assert _stored(server, by_passkey) is not None
        session = client.cookies.get("sekisho_session")
    with httpx.Client(base_url=server.url, cookies={"sekisho_session": str(session)}) as client:
        assert register(server, client, SoftAuthenticator()).status_code == 201
    assert _stored(server, by_passkey) is None
    with server.database.engine.connect() as connection:
        retired = connection.execute(
            text("SELECT count(*) FROM users WHERE password_retired_at IS NOT NULL")
        ).scalar_one()
    assert retired == 2


def test_hybrid_keeps_passwords_after_email_sign_in(server: LiveServer, smtp: SmtpCapture) -> None:
    user_id = _import(server, "fay@example.com", ASPNET_V3)
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "fay@example.com")
    assert _stored(server, user_id) is not None
    with httpx.Client(base_url=server.url) as client:
        assert _login(client, "fay@example.com", ASPNET_PASSWORD).status_code == 200


def test_passwordless_mode_cutoff_and_per_user_override(make_server: ServerFactory) -> None:
    server = make_server(migration_mode="passwordless")
    _import(server, "gil@example.com", ASPNET_V3)
    _import(server, "hal@example.com", ASPNET_V3, mode="hybrid")
    with httpx.Client(base_url=server.url) as client:
        assert _login(client, "gil@example.com", ASPNET_PASSWORD).status_code == 400
        assert _login(client, "hal@example.com", ASPNET_PASSWORD).status_code == 200
        assert "/signin/password" not in client.get("/signin").text
    late = make_server(password_cutoff="2020-01-01T00:00:00Z")
    with httpx.Client(base_url=late.url) as client:
        assert _login(client, "hal@example.com", ASPNET_PASSWORD).status_code == 400


def test_password_lockout_never_blocks_email_sign_in(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    # A lockout (the cap) rather than a progressive delay: each attempt takes at least
    # password_attempt_floor, which could outlast a one-second delay.
    server = make_server(account_failure_free_attempts=2, account_failure_cap=2)
    _import(server, "ian@example.com", ASPNET_V3)
    with httpx.Client(base_url=server.url) as client:
        statuses = [_login(client, "ian@example.com", "wrong").status_code for _ in range(3)]
        assert statuses == [400, 400, 429]
        assert _login(client, "ian@example.com", ASPNET_PASSWORD).status_code == 429
        email_sign_in(server, smtp, client, "ian@example.com")
        assert client.get("/api/v1/session").json()["amr"] == ["email"]


def test_password_page_and_migration_banner(server: LiveServer) -> None:
    _import(server, "jo@example.com", ASPNET_V3)
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/signin/password")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post(
            "/signin/password",
            data={"csrf_token": csrf, "email": "jo@example.com", "password": ASPNET_PASSWORD},
            headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        )
        assert response.status_code == 303
        account = client.get("/account").text
        assert 'id="finish-migration"' in account
        assert "Confirm my email address" in account


def test_the_password_never_reaches_logs_audit_or_answers(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _import(server, "kim@example.com", ASPNET_V3)
    secret = "Secret-Passphrase-7f3a"
    with httpx.Client(base_url=server.url) as client:
        wrong = _login(client, "kim@example.com", secret)
        missing = _login(client, "nobody@example.com", secret)
    assert secret not in wrong.text
    assert secret not in missing.text
    server_side = [
        r for r in caplog.records if r.name.startswith(("sekisho", "uvicorn", "sqlalchemy"))
    ]
    assert all(secret not in record.getMessage() for record in server_side)
    with server.database.engine.connect() as connection:
        audit = " ".join(str(row) for row in connection.execute(text("SELECT * FROM audit_events")))
    assert secret not in audit


def test_a_password_session_cannot_add_or_remove_passkeys(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    _import(server, "lee@example.com", ASPNET_V3)
    with httpx.Client(base_url=server.url) as owner:
        email_sign_in(server, smtp, owner, "lee@example.com")
        added = register(server, owner, SoftAuthenticator())
        assert added.status_code == 201
    with httpx.Client(base_url=server.url) as holder_of_old_password:
        assert _login(holder_of_old_password, "lee@example.com", ASPNET_PASSWORD).status_code == 200
        refused = holder_of_old_password.post("/api/v1/passkeys/registration/options", json={})
        assert refused.status_code == 403
        assert refused.json()["error"] == "reauthentication_required"
        removal = holder_of_old_password.delete(f"/api/v1/passkeys/{added.json()['id']}")
        assert removal.status_code == 403
