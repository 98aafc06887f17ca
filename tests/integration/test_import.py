"""``sekisho users import``: real files, a real database, run as a process."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import bcrypt
from sqlalchemy import text

from sekisho.core.keys import Keyring
from sekisho.core.records import User
from sekisho.store.database import Database, make_engine
from sekisho.store.migrate import upgrade
from tests.support.cli import run_sekisho
from tests.support.server import SECRET_KEY, fresh_database

ASPNET_V3 = "AQAAAAIAACcQAAAAEAABAgMEBQYHCAkKCwwNDg9B0Oxwty+PGIDSp95gcCfzeDvA4sGapUIUov8usXfD6A=="


def _csv(path: Path) -> Path:
    bcrypt_hash = bcrypt.hashpw(b"old secret", bcrypt.gensalt(rounds=4)).decode()
    path.write_text(
        "id,email,email_verified,display_name,password_hash,tier\n"
        f"6f1c0d5e-1111-4a7b-9c1d-000000000001,Aki@Example.jp,true,Aki,{ASPNET_V3},gold\n"
        f"6f1c0d5e-1111-4a7b-9c1d-000000000002,ben@example.com,false,Ben,{bcrypt_hash},\n"
        "6f1c0d5e-1111-4a7b-9c1d-000000000003,not-an-address,true,Bad,,\n"
        "6f1c0d5e-1111-4a7b-9c1d-000000000004,cy@example.com,true,Cy,md5$abc$def,\n"
        "6f1c0d5e-1111-4a7b-9c1d-000000000005,aki@example.jp,true,Dup,,\n"
        ",dee@example.com,true,NoId,,\n",
        encoding="utf-8",
    )
    return path


def test_import_is_idempotent_and_reports_bad_rows(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        assert run_sekisho(url, "db", "upgrade").returncode == 0
        source = _csv(tmp_path / "users.csv")
        first = run_sekisho(url, "users", "import", str(source))
        assert first.returncode == 3, first.stderr
        assert "created 2, updated 0, unchanged 0, rejected 4" in first.stdout
        assert "line 4: rejected: email is missing or not a valid address" in first.stderr
        assert (
            "line 5: rejected: password_hash is in a format Sekisho cannot verify" in first.stderr
        )
        assert "line 6: rejected: email already belongs to another account" in first.stderr
        assert "line 7: rejected: id is missing" in first.stderr
        second = run_sekisho(url, "users", "import", str(source))
        assert "created 0, updated 0, unchanged 2, rejected 4" in second.stdout
        engine = make_engine(url)
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT u.id, u.email, u.email_verified_at IS NOT NULL, u.attributes, p.scheme "
                    "FROM users u JOIN passwords p ON p.user_id = u.id ORDER BY u.id"
                )
            ).all()
        engine.dispose()
        assert [(r[0][-1], r[1], bool(r[2]), json.loads(r[3]), r[4]) for r in rows] == [
            ("1", "aki@example.jp", True, {"tier": "gold"}, "aspnet-identity-v3"),
            ("2", "ben@example.com", False, {}, "bcrypt"),
        ]


def test_json_lines_and_no_resurrection_of_passwords(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        source = tmp_path / "users.jsonl"
        source.write_text(
            json.dumps(
                {
                    "id": "u-1",
                    "email": "eve@example.com",
                    "email_verified": True,
                    "password_hash": ASPNET_V3,
                    "attributes": {"tier": "platinum"},
                    "migration_mode": "phase_out",
                }
            )
            + "\n"
            + "not json\n"
            + json.dumps(["a", "list"])
            + "\n",
            encoding="utf-8",
        )
        first = run_sekisho(url, "users", "import", str(source))
        assert "created 1, updated 0, unchanged 0, rejected 2" in first.stdout
        assert "line 2: rejected: not valid JSON" in first.stderr
        database = Database(engine, Keyring(SECRET_KEY))
        with database.transaction() as repos:
            assert repos.passwords.delete("u-1")
            repos.users.retire_password("u-1", now=datetime.now(UTC))
        again = run_sekisho(url, "users", "import", str(source))
        assert "unchanged 1" in again.stdout
        with database.transaction() as repos:
            assert repos.passwords.get("u-1") is None
            user = repos.users.by_id("u-1")
            assert user is not None
            assert user.migration_mode == "phase_out"
            assert user.attributes == {"tier": "platinum"}
        database.dispose()


def _key(password: str, salt: str, iterations: int = 1000) -> str:
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return base64.b64encode(derived).decode()


def test_hashes_that_can_never_verify_are_refused_with_their_line(
    backend: str, tmp_path: Path
) -> None:
    """Issue 7.2: the importer checks each hash with the parser sign-in verifies it with."""
    good = bcrypt.hashpw(b"old secret", bcrypt.gensalt(rounds=4)).decode()
    never = [
        f"pbkdf2_sha256$1000$salt${_key('pw', 'salt')[:-4]}",
        "pbkdf2_sha256$many$salt$" + _key("pw", "salt"),
        good[:-31] + "!" * 31,
        good[:28] + "/" + good[29:],
        "$pbkdf2-sha256$1000$c2FsdA",
        "AQAAAAIAACcQAAAACAABAgMEBQYHQdDscLcvjxiA0qfeYHAn83g7wOLBmqVCFKL/LrF3w+g=",
    ]
    rows = [{"id": "ok", "email": "ok@example.com", "password_hash": good}] + [
        {"id": f"bad-{n}", "email": f"bad{n}@example.com", "password_hash": stored}
        for n, stored in enumerate(never)
    ]
    source = tmp_path / "users.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with fresh_database(backend, tmp_path) as url:
        assert run_sekisho(url, "db", "upgrade").returncode == 0
        result = run_sekisho(url, "users", "import", str(source))
        assert result.returncode == 3, result.stderr
        assert f"created 1, updated 0, unchanged 0, rejected {len(never)}" in result.stdout
        for line in range(2, len(never) + 2):
            assert (
                f"line {line}: rejected: password_hash is in a format Sekisho cannot verify"
                in result.stderr
            )
        engine = make_engine(url)
        with engine.connect() as connection:
            users = connection.execute(text("SELECT id FROM users")).scalars().all()
        engine.dispose()
        assert users == ["ok"]


def test_wrap_legacy_hashes_wraps_what_an_older_import_stored(backend: str, tmp_path: Path) -> None:
    django = f"pbkdf2_sha256$1000$ab-cd_ef12${_key('old secret', 'ab-cd_ef12')}"
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        database = Database(engine, Keyring(SECRET_KEY))
        now = datetime.now(UTC)
        with database.transaction() as repos:
            for user_id, stored, scheme in [
                ("v3", ASPNET_V3, "aspnet-identity-v3"),
                ("dj", django, "django-pbkdf2-sha256"),
                ("broken", "pbkdf2_sha256$1000$salt$short", "django-pbkdf2-sha256"),
            ]:
                repos.users.save_imported(
                    User(
                        id=user_id,
                        email=f"{user_id}@example.com",
                        status="active",
                        created_at=now,
                        imported_at=now,
                    )
                )
                repos.passwords.put(user_id, hash=stored, scheme=scheme, now=now)
        first = run_sekisho(url, "users", "wrap-legacy-hashes")
        assert first.returncode == 0, first.stderr
        assert "wrapped 2, unchanged 0, unusable 1" in first.stdout
        assert "broken: stored hash can never verify" in first.stderr
        with database.transaction() as repos:
            wrapped = {user_id: repos.passwords.get(user_id) for user_id in ("v3", "dj")}
        for user_id, stored_password in wrapped.items():
            assert stored_password is not None
            assert stored_password.hash.startswith("$sekisho-wrap$"), user_id
        assert ASPNET_V3[-40:] not in str(wrapped["v3"])
        assert django.rsplit("$", 1)[1] not in str(wrapped["dj"])
        again = run_sekisho(url, "users", "wrap-legacy-hashes")
        assert "wrapped 0, unchanged 2, unusable 1" in again.stdout
        with engine.connect() as connection:
            audited = connection.execute(
                text(
                    "SELECT detail FROM audit_events WHERE event = 'passwords.wrapped' ORDER BY at"
                )
            ).scalars()
            counts = [json.loads(detail)["wrapped"] for detail in audited]
        assert counts == [2, 0]
        database.dispose()
