"""SECURITY.md case 56: one secret key per deployment. A process started with another key
refuses to start, and no message is ever marked failed because it could not be decrypted.
Real processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from subprocess import CompletedProcess

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from sekisho.core.keys import Keyring
from sekisho.mail.senders import make_sender
from sekisho.mail.worker import OutboxWorker
from sekisho.service import utc_now
from sekisho.store.database import make_engine
from sekisho.store.deployment import NotReady, check_key
from sekisho.store.migrate import upgrade
from tests.conftest import ServerFactory
from tests.support.cli import run_sekisho
from tests.support.loop import run_async
from tests.support.ports import free_port
from tests.support.server import LiveServer, fresh_database
from tests.support.smtp import SmtpCapture, link_and_code

OTHER_KEY = "another-secret-key-0123456789abcdef01234567"


def _sekisho(server: LiveServer, *args: str, key: str) -> CompletedProcess[str]:
    return run_sekisho(
        server.settings.database_url,
        *args,
        secret_key=key,
        SEKISHO_MAIL_BACKEND="smtp",
        SEKISHO_SMTP_HOST="127.0.0.1",
        SEKISHO_SMTP_PORT=str(server.settings.smtp_port),
        SEKISHO_SMTP_SECURITY="none",
    )


def _queue_one(server: LiveServer, email: str) -> None:
    server.add_user(email)
    with httpx.Client(base_url=server.url) as client:
        response = client.post("/api/v1/signin/email", json={"email": email})
        assert response.status_code == 202


def _outbox(server: LiveServer) -> tuple[str, int, object]:
    with server.database.engine.connect() as connection:
        row = connection.execute(text("SELECT status, attempts, locked_until FROM outbox")).one()
    return row[0], row[1], row[2]


def _settled_status(server: LiveServer) -> str:
    """The message's status once the worker has recorded the outcome: the worker commits
    "sent" only after the SMTP server has the message, so the capture sees it first."""
    deadline = time.monotonic() + 20
    while (status := _outbox(server)[0]) == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    return status


def _audited(server: LiveServer, event: str) -> int:
    with server.database.engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM audit_events WHERE event = :event"), {"event": event}
            ).scalar_one()
        )


def test_case56_processes_with_another_key_refuse_to_start(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    first = make_server(mail_worker=False)
    _queue_one(first, "kai@example.com")
    assert _audited(first, "deployment.key_recorded") == 1

    served = _sekisho(first, "serve", "--port", str(free_port()), key=OTHER_KEY)
    worker = _sekisho(first, "mail", "worker", key=OTHER_KEY)
    for refused in (served, worker):
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "SEKISHO_SECRET_KEY is not the key this database was set up with" in refused.stderr
        assert "sekisho key adopt" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert OTHER_KEY not in refused.stderr
    other_settings = first.settings.model_copy(update={"secret_key": SecretStr(OTHER_KEY)})
    in_process = LiveServer(other_settings, free_port())
    with pytest.raises(RuntimeError, match="did not start"):
        in_process.start()

    assert _outbox(first) == ("pending", 0, None)
    assert _audited(first, "deployment.key_refused") == 3
    assert _audited(first, "mail.failed") == 0
    make_server()
    assert link_and_code(smtp.wait_for("kai@example.com", timeout=20))


def test_case56_a_worker_with_another_key_leaves_the_message_for_the_right_one(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    first = make_server(mail_worker=False)
    _queue_one(first, "lea@example.com")
    settings = first.settings
    database = first.database
    wrong = OutboxWorker(
        settings=settings,
        database=database,
        keys=Keyring(OTHER_KEY),
        sender=make_sender(settings, database),
        clock=utc_now,
    )

    async def twice() -> tuple[bool, bool]:
        return await wrong.deliver_one(), await wrong.deliver_one()

    assert run_async(twice()) == (True, False)
    database.dispose()
    assert _outbox(first) == ("pending", 0, None)
    assert _audited(first, "mail.skipped") == 1
    assert _audited(first, "mail.failed") == 0
    assert smtp.to("lea@example.com") == []
    make_server()
    assert link_and_code(smtp.wait_for("lea@example.com", timeout=20))
    assert _settled_status(first) == "sent"


def test_case56_processes_starting_together_agree_on_one_key(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        keys = [Keyring(OTHER_KEY), Keyring("a-third-secret-key-0123456789abcdef0123456")] * 3

        def start(keyring: Keyring) -> str | None:
            try:
                check_key(engine, keyring, process="test", now=datetime.now(UTC))
            except NotReady:
                return None
            return keyring.fingerprint()

        with ThreadPoolExecutor(max_workers=6) as pool:
            started = list(pool.map(start, keys))
        with engine.connect() as connection:
            recorded = connection.execute(
                text("SELECT count(*) FROM audit_events WHERE event = 'deployment.key_recorded'")
            ).scalar_one()
        engine.dispose()
    winners = {fingerprint for fingerprint in started if fingerprint is not None}
    assert len(winners) == 1
    assert started.count(None) == 3
    assert recorded == 1


def test_key_adopt_makes_a_new_key_the_deployments(make_server: ServerFactory) -> None:
    first = make_server(mail_worker=False)
    _queue_one(first, "max@example.com")
    first.stop()

    adopted = _sekisho(first, "key", "adopt", "--yes", key=OTHER_KEY)
    assert adopted.returncode == 0, adopted.stderr
    assert "1 pending messages dropped" in adopted.stdout
    assert _outbox(first)[0] == "dropped"
    assert _audited(first, "deployment.key_adopted") == 1
    assert _audited(first, "mail.failed") == 0

    old = _sekisho(first, "mail", "worker", key=first.settings.secret_key.get_secret_value())
    assert old.returncode == 1
    assert "sekisho key adopt" in old.stderr
    database = first.database
    check_key(database.engine, Keyring(OTHER_KEY), process="test", now=datetime.now(UTC))
    with pytest.raises(NotReady):
        check_key(
            database.engine,
            Keyring(first.settings.secret_key.get_secret_value()),
            process="test",
            now=datetime.now(UTC),
        )
    database.dispose()
