"""The ``sekisho`` command, run as operators run it: a real process and a real database."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from typer.testing import CliRunner

from sekisho import cli
from sekisho.store.database import make_engine
from sekisho.store.migrate import upgrade
from tests.conftest import ServerFactory
from tests.support.cli import run_sekisho, sekisho_environment, serving
from tests.support.ports import free_port
from tests.support.server import fresh_database
from tests.support.smtp import SmtpCapture, link_and_code


def test_db_upgrade_and_user_management(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        assert run_sekisho(url, "db", "upgrade").returncode == 0
        created = run_sekisho(url, "users", "add", "Ops@Example.com", "--name", "Ops")
        assert created.returncode == 0, created.stderr
        assert "ops@example.com" in created.stdout
        assert run_sekisho(url, "users", "add", "ops@example.com").returncode == 1
        assert run_sekisho(url, "users", "add", "not an address").returncode == 2
        assert run_sekisho(url, "users", "disable", "ops@example.com").returncode == 0
        listing = run_sekisho(url, "users", "list").stdout
        assert "ops@example.com\tdisabled\tnever" in listing
        assert run_sekisho(url, "users", "enable", "ops@example.com").returncode == 0
        assert run_sekisho(url, "users", "disable", "nobody@example.com").returncode == 1
        status = run_sekisho(url, "mail", "status")
        assert status.returncode == 0
        assert "pending\t0" in status.stdout


def test_api_keys_that_act_on_recoveries_belong_to_an_operator(
    backend: str, tmp_path: Path
) -> None:
    """``--operator`` is required for recovery:open and recovery:approve and must be an
    address in admin_emails; it is stored normalised and listed."""
    operators = '["ops@example.com"]'
    with fresh_database(backend, tmp_path) as url:
        assert run_sekisho(url, "db", "upgrade").returncode == 0
        create = ("api-keys", "create", "--name", "desk", "--scope", "recovery:approve")
        missing = run_sekisho(url, *create, SEKISHO_ADMIN_EMAILS=operators)
        assert missing.returncode == 2
        assert "--operator" in missing.stderr
        stranger = run_sekisho(
            url, *create, "--operator", "eve@example.com", SEKISHO_ADMIN_EMAILS=operators
        )
        assert stranger.returncode == 2
        assert "admin_emails" in stranger.stderr
        made = run_sekisho(
            url, *create, "--operator", "Ops@Example.com", SEKISHO_ADMIN_EMAILS=operators
        )
        assert made.returncode == 0, made.stderr
        plain = run_sekisho(url, "api-keys", "create", "--name", "ro", "--scope", "users:read")
        assert plain.returncode == 0, plain.stderr
        listing = run_sekisho(url, "api-keys", "list").stdout
        assert "recovery:approve  never used  ops@example.com  desk" in listing
        assert "users:read  never used  no operator  ro" in listing


@pytest.mark.parametrize("backend", ["sqlite"])
def test_check_config_hides_secrets_and_refuses_bad_production(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as url:
        shown = run_sekisho(url, "check-config", SEKISHO_SECRET_KEY="s" * 40)
        assert shown.returncode == 0
        assert "s" * 40 not in shown.stdout
        assert "secret_key = **********" in shown.stdout
        refused = run_sekisho(url, "check-config", secret_key=None, SEKISHO_MODE="production")
        assert refused.returncode == 2
        assert "SEKISHO_SECRET_KEY is not set" in refused.stderr
        not_json = run_sekisho(
            url, "check-config", SEKISHO_WEBAUTHN_ORIGINS="https://a.example,https://b.example"
        )
        assert not_json.returncode == 2
        assert "JSON arrays" in not_json.stderr
        assert "Traceback" not in not_json.stderr


def test_mail_worker_process_delivers_what_web_instances_queue(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    web = make_server(mail_worker=False)
    web.add_user("ops@example.com")
    with httpx.Client(base_url=web.url) as client:
        assert (
            client.post("/api/v1/signin/email", json={"email": "ops@example.com"}).status_code
            == 202
        )
    time.sleep(0.3)
    assert smtp.to("ops@example.com") == []
    environment = sekisho_environment(
        web.settings.database_url,
        SEKISHO_MAIL_BACKEND="smtp",
        SEKISHO_SMTP_HOST="127.0.0.1",
        SEKISHO_SMTP_PORT=str(smtp.port),
        SEKISHO_SMTP_SECURITY="none",
        SEKISHO_MAIL_POLL_SECONDS="0.1",
    )
    worker = subprocess.Popen([sys.executable, "-m", "sekisho", "mail", "worker"], env=environment)
    try:
        assert link_and_code(smtp.wait_for("ops@example.com", timeout=20))
    finally:
        worker.terminate()
        worker.wait(timeout=10)


def test_db_purge_removes_what_ended_and_keeps_the_audit(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server()
    server.add_user("old@example.com")
    with httpx.Client(base_url=server.url) as client:
        flow = client.post("/api/v1/signin/email", json={"email": "old@example.com"}).json()
        _link, code = link_and_code(smtp.wait_for("old@example.com"))
        assert (
            client.post(
                f"/api/v1/signin/email/flows/{flow['flow_id']}/code", json={"code": code}
            ).status_code
            == 200
        )
        assert client.delete("/api/v1/session").status_code == 204
    with server.database.engine.begin() as connection:
        for table, column in (
            ("flows", "expires_at"),
            ("sessions", "revoked_at"),
            ("outbox", "finished_at"),
        ):
            connection.execute(
                text(f"UPDATE {table} SET {column} = :old"),
                {"old": datetime(2020, 1, 1, tzinfo=UTC)},
            )
    result = run_sekisho(server.settings.database_url, "db", "purge", "--older-than-days", "30")
    assert result.returncode == 0, result.stderr
    counts = dict(line.split("\t") for line in result.stdout.splitlines())
    assert counts["flows"] == "1"
    assert counts["onetime_secrets"] == "2"
    assert counts["sessions"] == "1"
    assert counts["outbox"] == "1"
    with server.database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar_one() > 0
        assert connection.execute(text("SELECT count(*) FROM flows")).scalar_one() == 0


COMMANDS_ON_THE_DATABASE = [
    ("users", "list"),
    ("users", "add", "ann@example.com"),
    ("users", "import", "users.csv"),
    ("mail", "status"),
    ("mail", "worker"),
    ("migration", "status"),
    ("db", "purge"),
    ("key", "adopt", "--yes"),
]


def test_commands_on_a_fresh_clone_say_what_torun_sekisho(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("id,email\n1,ann@example.com\n")
    for command in COMMANDS_ON_THE_DATABASE:
        result = run_sekisho(None, *command, cwd=tmp_path)
        assert result.returncode == 1, (command, result.stderr)
        assert result.stderr.strip().splitlines() == [
            "sekisho: there is no database at ./var/sekisho.db: create it with `sekisho db upgrade`"
        ], command
    assert not (tmp_path / "var").exists()
    assert run_sekisho(None, "db", "upgrade", cwd=tmp_path).returncode == 0
    assert (tmp_path / "var" / "sekisho.db").is_file()
    imported = run_sekisho(None, "users", "import", "users.csv", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "created 1" in imported.stdout


def test_commands_on_a_database_not_migrated_say_what_torun_sekisho(
    backend: str, tmp_path: Path
) -> None:
    (tmp_path / "users.csv").write_text("id,email\n1,ann@example.com\n")
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE unrelated (id INTEGER)"))
        for command in (("users", "import", "users.csv"), ("mail", "worker"), ("users", "list")):
            result = run_sekisho(None, *command, SEKISHO_DATABASE_URL=url, cwd=tmp_path)
            assert result.returncode == 1, (command, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, (command, result.stderr)
            assert lines[0].endswith(
                "has no Sekisho tables yet: create them with `sekisho db upgrade`"
            )
        upgrade(engine, "0003_passwords")
        behind = run_sekisho(None, "users", "list", SEKISHO_DATABASE_URL=url, cwd=tmp_path)
        assert behind.returncode == 1
        assert "is at revision 0003_passwords" in behind.stderr
        assert behind.stderr.strip().endswith("run `sekisho db upgrade`")
        refused = run_sekisho(
            None, "serve", SEKISHO_DATABASE_URL=url, SEKISHO_AUTO_MIGRATE="false", cwd=tmp_path
        )
        assert refused.returncode == 1
        assert "Traceback" not in refused.stderr
        assert refused.stderr.strip().endswith("run `sekisho db upgrade`")
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        for command in (("users", "list"), ("serve", "--port", str(free_port()))):
            newer = run_sekisho(None, *command, SEKISHO_DATABASE_URL=url, cwd=tmp_path)
            assert newer.returncode == 1, newer.stderr
            assert newer.stderr.strip().endswith(
                "was migrated by a newer version of Sekisho (9999_future): run that version"
            )
            assert "Traceback" not in newer.stderr
        engine.dispose()


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/sekisho_no_such_database"
    for command in (("db", "upgrade"), ("users", "list")):
        result = run_sekisho(None, *command, SEKISHO_DATABASE_URL=url, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.startswith(
            "sekisho: cannot open the database at "
            "postgresql://postgres@127.0.0.1:5432/sekisho_no_such_database: "
        )
        assert len(result.stderr.strip().splitlines()) == 1


def test_serve_shows_one_address(tmp_path: Path) -> None:
    """The console a newcomer reads names the public origin, never uvicorn's
    http://127.0.0.1:PORT; and an unset origin follows --port."""
    port = free_port()
    with serving(tmp_path, port) as console:
        output = console.wait_for("/signin")
    assert (
        f"Sekisho development mode: open http://localhost:{port}/signin "
        f"(mail it sends: http://localhost:{port}/dev/mailbox)" in output
    )
    assert "127.0.0.1" not in output
    assert "Uvicorn running" not in output


def test_serve_keeps_an_idle_connection_for_the_next_request(tmp_path: Path) -> None:
    """A kept-alive connection idle for longer than uvicorn's default 5 s still answers:
    clients reuse pooled connections, and a server closing first left one request
    without an answer (SEKISHO_KEEP_ALIVE_SECONDS, 75 s by default)."""
    port = free_port()
    with serving(tmp_path, port):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        statuses = []
        for pause in (0, 6.5):
            time.sleep(pause)
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            answer.read()
            statuses.append(answer.status)
            if pause == 0:
                first_socket = connection.sock
        assert connection.sock is first_socket
        connection.close()
    assert statuses == [200, 200]


def test_serve_with_workers_needs_shared_rate_limits(tmp_path: Path) -> None:
    """Limits kept in memory would count per process: N workers would allow N times them."""
    url = f"sqlite:///{tmp_path}/sekisho.db"
    result = run_sekisho(url, "serve", "--workers", "2", cwd=tmp_path)
    assert result.returncode == 2
    assert "--workers above 1 needs SEKISHO_REDIS_URL" in result.stderr


def test_serve_with_two_workers_runs_two_processes_that_answer(tmp_path: Path) -> None:
    port = free_port()
    environment = sekisho_environment(
        f"sqlite:///{tmp_path}/sekisho.db", SEKISHO_REDIS_URL="redis://127.0.0.1:6379/0"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "sekisho", "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        workers: set[str] = set()
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
            workers = {
                pid
                for pid in children
                if "spawn_main"
                in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            }
            time.sleep(0.2)
        assert len(workers) == 2
        answered = None
        while answered is None and time.monotonic() < deadline:
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            except httpx.TransportError:
                time.sleep(0.2)
        assert answered is not None
        assert answered.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_with_workers_gives_them_time_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn's supervisor kills a worker that has not answered its health check within
    ``timeout_worker_healthcheck`` (5 s by default), and a worker answers only once it
    has imported Sekisho: on a busy host every worker was killed while starting. serve
    hands uvicorn ``worker_healthcheck_seconds`` instead."""
    passed: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: passed.update(kwargs))
    environment = sekisho_environment(
        f"sqlite:///{tmp_path}/sekisho.db",
        SEKISHO_REDIS_URL="redis://127.0.0.1:6379/0",
        SEKISHO_WORKER_HEALTHCHECK_SECONDS="45",
    )
    for name in [name for name in os.environ if name.startswith("SEKISHO_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        if name.startswith("SEKISHO_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.app, ["serve", "--port", str(free_port()), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert passed["workers"] == 2
    assert passed["timeout_worker_healthcheck"] == 45
