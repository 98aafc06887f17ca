"""``sekisho users import``: real files, a real database, run as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import bcrypt
from sqlalchemy import text

from sekisho.core.keys import Keyring
from sekisho.store.database import Database, make_engine
from sekisho.store.migrate import upgrade
from tests.support.server import fresh_database

ASPNET_V3 = "AQAAAAIAACcQAAAAEAABAgMEBQYHCAkKCwwNDg9B0Oxwty+PGIDSp95gcCfzeDvA4sGapUIUov8usXfD6A=="


def _run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    environment["SEKISHO_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "sekisho", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


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
        assert _run(url, "db", "upgrade").returncode == 0
        source = _csv(tmp_path / "users.csv")
        first = _run(url, "users", "import", str(source))
        assert first.returncode == 3, first.stderr
        assert "created 2, updated 0, unchanged 0, rejected 4" in first.stdout
        assert "line 4: rejected: email is missing or not a valid address" in first.stderr
        assert (
            "line 5: rejected: password_hash is in a format Sekisho cannot verify" in first.stderr
        )
        assert "line 6: rejected: email already belongs to another account" in first.stderr
        assert "line 7: rejected: id is missing" in first.stderr
        second = _run(url, "users", "import", str(source))
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
        first = _run(url, "users", "import", str(source))
        assert "created 1, updated 0, unchanged 0, rejected 2" in first.stdout
        assert "line 2: rejected: not valid JSON" in first.stderr
        database = Database(engine, Keyring("test-import-secret"))
        with database.transaction() as repos:
            assert repos.passwords.delete("u-1")
            repos.users.retire_password("u-1", now=datetime.now(UTC))
        again = _run(url, "users", "import", str(source))
        assert "unchanged 1" in again.stdout
        with database.transaction() as repos:
            assert repos.passwords.get("u-1") is None
            user = repos.users.by_id("u-1")
            assert user is not None
            assert user.migration_mode == "phase_out"
            assert user.attributes == {"tier": "platinum"}
        database.dispose()
