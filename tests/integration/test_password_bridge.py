"""The legacy password as a bridge, over real HTTP (SECURITY.md cases 23-25)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import struct
from pathlib import Path

import bcrypt
import httpx
import pytest
from argon2 import PasswordHasher, Type
from passlib.hash import django_pbkdf2_sha256, pbkdf2_sha256, scrypt, sha256_crypt, sha512_crypt
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.authenticator import SoftAuthenticator
from tests.support.cli import run_sekisho
from tests.support.passkeys import email_sign_in, register
from tests.support.passwords import import_with_password
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

ASPNET_V3 = "AQAAAAIAACcQAAAAEAABAgMEBQYHCAkKCwwNDg9B0Oxwty+PGIDSp95gcCfzeDvA4sGapUIUov8usXfD6A=="
ASPNET_PASSWORD = "my password"


def _stored(server: LiveServer, user_id: str) -> str | None:
    with server.database.engine.connect() as connection:
        return connection.execute(
            text("SELECT hash FROM passwords WHERE user_id = :u"), {"u": user_id}
        ).scalar()


def _login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/api/v1/signin/password", json={"email": email, "password": password})


def test_case23_correct_legacy_password_signs_in_and_rehashes(server: LiveServer) -> None:
    user_id = import_with_password(server, "aki@example.jp", ASPNET_V3)
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


def _every_format(password: str) -> dict[str, str]:
    """One hash per supported format, each made by its own framework's library (ASP.NET
    Core Identity's by hashlib, as its PasswordHasher lays it out)."""
    raw = password.encode()
    salt = bytes(range(16))
    v2 = b"\x00" + salt + hashlib.pbkdf2_hmac("sha1", raw, salt, 1000, 32)
    v3 = (
        b"\x01"
        + struct.pack(">III", 2, 1000, 16)
        + salt
        + hashlib.pbkdf2_hmac("sha512", raw, salt, 1000, 32)
    )
    return {
        "aspnet-identity-v2": base64.b64encode(v2).decode(),
        "aspnet-identity-v3": base64.b64encode(v3).decode(),
        "bcrypt": bcrypt.hashpw(raw, bcrypt.gensalt(rounds=4)).decode(),
        "argon2i": PasswordHasher(type=Type.I, time_cost=1, memory_cost=1024).hash(password),
        "argon2id": PasswordHasher(type=Type.ID, time_cost=1, memory_cost=1024).hash(password),
        "django-pbkdf2-sha256": django_pbkdf2_sha256.using(rounds=1000).hash(password),
        "passlib-pbkdf2-sha256": pbkdf2_sha256.using(rounds=1000).hash(password),
        "scrypt": scrypt.using(rounds=4).hash(password),
        "sha256-crypt": sha256_crypt.using(rounds=1000).hash(password),
        "sha512-crypt": sha512_crypt.using(rounds=1000).hash(password),
    }


def _import_file(server: LiveServer, tmp_path: Path, rows: list[dict[str, str]]) -> str:
    source = tmp_path / "users.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = run_sekisho(server.settings.database_url, "users", "import", str(source))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_case60_every_format_is_wrapped_at_import_and_still_signs_in(
    server: LiveServer, tmp_path: Path
) -> None:
    password = "correct horse パスワード"
    hashes = _every_format(password)
    rows = [
        {"id": scheme, "email": f"{scheme}@example.com", "password_hash": stored}
        for scheme, stored in hashes.items()
    ]
    assert f"created {len(rows)}," in _import_file(server, tmp_path, rows)
    with server.database.engine.connect() as connection:
        stored_rows: dict[str, str] = {
            user_id: stored
            for user_id, stored in connection.execute(text("SELECT user_id, hash FROM passwords"))
        }
    for scheme, original in hashes.items():
        wrapped = stored_rows[scheme]
        assert wrapped.startswith(f"$sekisho-wrap${scheme}$"), scheme
        assert original not in wrapped, scheme
        assert original[-16:] not in wrapped, scheme
    with httpx.Client(base_url=server.url) as client:
        for scheme in hashes:
            wrong = _login(client, f"{scheme}@example.com", password + "!")
            assert wrong.status_code == 400, scheme
            assert _stored(server, scheme) == stored_rows[scheme]
            right = _login(client, f"{scheme}@example.com", password)
            assert right.status_code == 200, (scheme, right.text)
            client.cookies.clear()
            rehashed = _stored(server, scheme)
            assert rehashed is not None
            assert rehashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), scheme


def test_issue7_django_salt_with_dash_and_underscore_signs_in(
    server: LiveServer, tmp_path: Path
) -> None:
    """Django accepts any salt without ``$``; so must the importer and the verifier."""
    salts = ["ab-cd_ef12", "sel.de/mer+=", "塩"]
    rows = [
        {
            "id": f"dj-{index}",
            "email": f"dj{index}@example.com",
            "password_hash": "pbkdf2_sha256$10000$"
            + salt
            + "$"
            + base64.b64encode(
                hashlib.pbkdf2_hmac("sha256", b"old secret", salt.encode(), 10000)
            ).decode(),
        }
        for index, salt in enumerate(salts)
    ]
    assert f"created {len(rows)}, updated 0, unchanged 0, rejected 0" in _import_file(
        server, tmp_path, rows
    )
    with httpx.Client(base_url=server.url) as client:
        for index in range(len(salts)):
            assert _login(client, f"dj{index}@example.com", "old secret!").status_code == 400
            signed_in = _login(client, f"dj{index}@example.com", "old secret")
            assert signed_in.status_code == 200, signed_in.text
            client.cookies.clear()


def test_case24_unknown_and_wrong_look_the_same(server: LiveServer) -> None:
    import_with_password(
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
    import_with_password(
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
    by_email = import_with_password(server, "dee@example.com", ASPNET_V3)
    by_passkey = import_with_password(server, "eve@example.com", ASPNET_V3)
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
    user_id = import_with_password(server, "fay@example.com", ASPNET_V3)
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "fay@example.com")
    assert _stored(server, user_id) is not None
    with httpx.Client(base_url=server.url) as client:
        assert _login(client, "fay@example.com", ASPNET_PASSWORD).status_code == 200


def test_passwordless_mode_cutoff_and_per_user_override(make_server: ServerFactory) -> None:
    server = make_server(migration_mode="passwordless")
    import_with_password(server, "gil@example.com", ASPNET_V3)
    import_with_password(server, "hal@example.com", ASPNET_V3, mode="hybrid")
    with httpx.Client(base_url=server.url) as client:
        assert _login(client, "gil@example.com", ASPNET_PASSWORD).status_code == 400
        assert _login(client, "hal@example.com", ASPNET_PASSWORD).status_code == 200
    late = make_server(password_cutoff="2020-01-01T00:00:00Z")
    with httpx.Client(base_url=late.url) as client:
        assert _login(client, "hal@example.com", ASPNET_PASSWORD).status_code == 400


def test_password_lockout_never_blocks_email_sign_in(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    # A lockout (the cap) rather than a progressive delay: each attempt takes at least
    # password_attempt_floor, which could outlast a one-second delay.
    server = make_server(account_failure_free_attempts=2, account_failure_cap=2)
    import_with_password(server, "ian@example.com", ASPNET_V3)
    with httpx.Client(base_url=server.url) as client:
        statuses = [_login(client, "ian@example.com", "wrong").status_code for _ in range(3)]
        assert statuses == [400, 400, 429]
        assert _login(client, "ian@example.com", ASPNET_PASSWORD).status_code == 429
        email_sign_in(server, smtp, client, "ian@example.com")
        assert client.get("/api/v1/session").json()["amr"] == ["email"]


def test_password_page_and_migration_banner(server: LiveServer) -> None:
    import_with_password(server, "jo@example.com", ASPNET_V3)
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
    import_with_password(server, "kim@example.com", ASPNET_V3)
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
    import_with_password(server, "lee@example.com", ASPNET_V3)
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
