"""The migration report: CLI and admin page, from a real database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from sekisho.core.records import User
from sekisho.store.reporting import migration_report
from sekisho.store.tables import users
from tests.conftest import ServerFactory
from tests.support.authenticator import SoftAuthenticator
from tests.support.cli import run_sekisho
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

ASPNET_V3 = "AQAAAAIAACcQAAAAEAABAgMEBQYHCAkKCwwNDg9B0Oxwty+PGIDSp95gcCfzeDvA4sGapUIUov8usXfD6A=="


def _import(server: LiveServer, name: str, *, password: bool) -> None:
    database = server.database
    now = datetime.now(UTC)
    with database.transaction() as repos:
        repos.users.save_imported(
            User(
                id=f"legacy-{name}",
                email=f"{name}@example.com",
                status="active",
                created_at=now,
                imported_at=now,
            )
        )
        if password:
            repos.passwords.put(
                f"legacy-{name}", hash=ASPNET_V3, scheme="aspnet-identity-v3", now=now
            )
    database.dispose()


def test_report_counts_states_and_sign_ins(make_server: ServerFactory, smtp: SmtpCapture) -> None:
    server = make_server(admin_emails=["boss@example.com"])
    _import(server, "only", password=True)
    _import(server, "both", password=True)
    _import(server, "key", password=False)
    _import(server, "idle", password=False)
    server.add_user("boss@example.com")
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "both@example.com")
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "key@example.com")
        assert register(server, client, SoftAuthenticator()).status_code == 201
    with httpx.Client(base_url=server.url) as client:
        assert (
            client.post(
                "/api/v1/signin/password",
                json={"email": "only@example.com", "password": "my password"},
            ).status_code
            == 200
        )
    result = run_sekisho(server.settings.database_url, "migration", "status", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["users"] == 5
    assert report["password_only"] == 1
    assert report["password_and_passwordless"] == 1
    assert report["passwordless_only"] == 3
    assert report["passkey_enrolled"] == 1
    assert report["imported"] == 4
    assert report["imported_never_signed_in"] == 1
    today = report["sign_ins_by_day"][-1]
    assert (today["pwd"], today["email"], today["passkey"]) == (1, 2, 0)
    with httpx.Client(base_url=server.url) as outsider:
        email_sign_in(server, smtp, outsider, "both@example.com")
        assert outsider.get("/admin/migration").status_code == 404
    with httpx.Client(base_url=server.url) as admin:
        assert admin.get("/admin/migration").status_code == 404
        email_sign_in(server, smtp, admin, "boss@example.com")
        refused = admin.get("/admin/migration")
        assert refused.status_code == 403
        assert 'data-error="operator_passkey_required"' in refused.text
        operator_key = SoftAuthenticator()
        assert register(server, admin, operator_key).status_code == 201
        assert sign_in(server, admin, operator_key).status_code == 200
        page = admin.get("/admin/migration")
        assert page.status_code == 200
        assert 'id="sign-in-chart"' in page.text
        assert admin.get("/admin/migration?format=json").json()["password_only"] == 1
        exported = admin.get("/admin/migration?format=csv")
        assert exported.headers["content-type"].startswith("text/csv")
        assert "password_only,1" in exported.text


def test_cohorts_follow_each_import_day_to_passwordless(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    """One account imported three days ago whose password was retired two days ago, and
    two imported today of which one has signed in by email: two cohorts, each with its
    share day by day, and nothing counted before its import."""
    server = make_server()
    now = datetime.now(UTC)
    earlier = now - timedelta(days=3)
    database = server.database
    with database.transaction() as repos:
        repos.users.save_imported(
            User(
                id="old",
                email="old@example.com",
                status="active",
                created_at=earlier,
                imported_at=earlier,
            )
        )
    with database.engine.begin() as connection:
        connection.execute(
            update(users)
            .where(users.c.id == "old")
            .values(password_retired_at=now - timedelta(days=2))
        )
    database.dispose()
    _import(server, "fresh", password=True)
    _import(server, "mover", password=True)
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "mover@example.com")

    database = server.database
    report = migration_report(database, now=datetime.now(UTC), days=5)
    database.dispose()
    today, old = report.cohorts
    assert (today.imported_on, today.accounts, today.moved) == (now.date().isoformat(), 2, 1)
    assert today.moved_by_day == [None, None, None, None, None, 1]
    assert (old.imported_on, old.accounts, old.moved) == (earlier.date().isoformat(), 1, 1)
    assert old.moved_by_day == [None, None, 0, 1, 1, 1]
    assert json.loads(report.as_json())["cohorts"][0]["moved_by_day"][-1] == 1
    assert f"{earlier.date().isoformat()},1,1,,,0,1,1,1" in report.as_csv()
    text = _status_text(server)
    assert "import cohorts" in text
    rows = [line.split() for line in text.splitlines()]
    assert [now.date().isoformat(), "2", "1", "50%"] in rows
    assert [earlier.date().isoformat(), "1", "1", "100%"] in rows


def test_status_text_says_when_nothing_was_imported(make_server: ServerFactory) -> None:
    server = make_server()
    server.add_user("new@example.com")
    assert "import cohorts: none" in _status_text(server)


def _status_text(server: LiveServer) -> str:
    """``sekisho migration status`` as an operator runs it, in its text form."""
    result = run_sekisho(server.settings.database_url, "migration", "status")
    assert result.returncode == 0, result.stderr
    return result.stdout
