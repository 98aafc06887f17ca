"""The tamper-evident audit chain (SECURITY.md case 57), on SQLite and PostgreSQL: real
sign-ins over HTTP write the events, the database is then changed behind Sekisho's back,
and ``sekisho audit verify`` runs as the operator runs it, in a process of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, text

from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent
from sekisho.store.audit_chain import verify_chain
from sekisho.store.database import Database, make_engine
from sekisho.store.migrate import upgrade
from tests.support.cli import run_sekisho
from tests.support.server import SECRET_KEY, LiveServer, fresh_database
from tests.support.smtp import SmtpCapture, link_and_code


def _run(
    server_or_url: LiveServer | str, *args: str, key: str = SECRET_KEY
) -> CompletedProcess[str]:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.settings.database_url
    return run_sekisho(url, *args, secret_key=key)


def _sign_in(server: LiveServer, smtp: SmtpCapture, address: str, count: int = 1) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        started = client.post("/api/v1/signin/email", json={"email": address})
        assert started.status_code == 202, started.text
        _link, code = link_and_code(smtp.wait_for(address, count=count))
        done = client.post(
            f"/api/v1/signin/email/flows/{started.json()['flow_id']}/code", json={"code": code}
        )
        assert done.status_code == 200, done.text


@contextmanager
def _engine(server: LiveServer) -> Iterator[Engine]:
    engine = make_engine(server.settings.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return [
            int(i)
            for i in connection.execute(text("SELECT id FROM audit_events ORDER BY id")).scalars()
        ]


def _row(connection: Connection, event_id: int) -> dict[str, Any]:
    row = connection.execute(
        text("SELECT * FROM audit_events WHERE id = :id"), {"id": event_id}
    ).mappings()
    return dict(row.one())


def _insert(connection: Connection, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    connection.execute(text(f"INSERT INTO audit_events ({columns}) VALUES ({values})"), row)


def _broken_at(server: LiveServer, event_id: int) -> None:
    verdict = _run(server, "audit", "verify")
    assert verdict.returncode == 1, verdict.stdout + verdict.stderr
    assert f"audit chain broken at event {event_id}:" in verdict.stderr, verdict.stderr
    assert "Traceback" not in verdict.stderr


def _intact(server: LiveServer) -> str:
    verdict = _run(server, "audit", "verify")
    assert verdict.returncode == 0, verdict.stderr
    assert "audit chain intact" in verdict.stdout
    return verdict.stdout


def _sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement), params)


def test_case57_verify_names_the_first_modified_deleted_or_reordered_event(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        server.add_user(address)
        _sign_in(server, smtp, address)
    _intact(server)
    with _engine(server) as engine:
        ids = _ids(engine)
        assert len(ids) >= 6
        middle, after, last = ids[2], ids[3], ids[-1]
        with engine.connect() as connection:
            original = _row(connection, middle)
            before_last = _row(connection, ids[-2])

        # A modified field: the event's own seal no longer matches.
        _sql(engine, "UPDATE audit_events SET outcome = 'failure' WHERE id = :id", id=middle)
        _broken_at(server, middle)
        _sql(
            engine,
            "UPDATE audit_events SET outcome = :o WHERE id = :id",
            o=original["outcome"],
            id=middle,
        )
        _intact(server)

        # A deleted event: the next one is out of place.
        _sql(engine, "DELETE FROM audit_events WHERE id = :id", id=middle)
        _broken_at(server, after)
        with engine.begin() as connection:
            _insert(connection, original)
        _intact(server)

        # Two events swapped: the first of the two is out of place.
        swap = [(middle, -1), (after, middle), (-1, after)]
        for old, new in swap:
            _sql(engine, "UPDATE audit_events SET id = :new WHERE id = :old", new=new, old=old)
        _broken_at(server, middle)
        for old, new in swap:
            _sql(engine, "UPDATE audit_events SET id = :new WHERE id = :old", new=new, old=old)
        _intact(server)

        # The tail deleted: the head records more than the log now holds.
        _sql(engine, "DELETE FROM audit_events WHERE id = :id", id=last)
        _broken_at(server, ids[-2])
        # ... also when the head is moved back with it: its MAC does not match.
        _sql(
            engine,
            "UPDATE audit_chain SET seq = :seq, hash = :hash",
            seq=before_last["seq"],
            hash=before_last["hash"],
        )
        _broken_at(server, ids[-2])


def test_events_carry_their_place_and_export_writes_json_lines(
    server: LiveServer, smtp: SmtpCapture, tmp_path: Path
) -> None:
    server.add_user("early@example.com")
    server.add_user("late@example.com")
    _sign_in(server, smtp, "early@example.com")
    since = datetime.now(UTC)
    _sign_in(server, smtp, "late@example.com")
    everything = _run(server, "audit", "export")
    assert everything.returncode == 0, everything.stderr
    lines = [json.loads(line) for line in everything.stdout.splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert all(len(line["hash"]) == 64 for line in lines)

    recent = _run(server, "audit", "export", "--since", since.isoformat())
    assert recent.returncode == 0, recent.stderr
    events = [json.loads(line) for line in recent.stdout.splitlines()]
    assert events, recent.stdout
    assert all(datetime.fromisoformat(event["at"]) >= since for event in events)
    assert {event["email"] for event in events if event["email"]} == {"late@example.com"}
    assert "signin.succeeded" in {event["event"] for event in events}
    assert events == [line for line in lines if datetime.fromisoformat(line["at"]) >= since]
    assert _run(server, "audit", "export", "--since", "yesterday").returncode == 2
    target = tmp_path / "audit.jsonl"
    written = _run(server, "audit", "export", "--since", since.isoformat(), "-o", str(target))
    assert written.returncode == 0, written.stderr
    assert target.read_text(encoding="utf-8") == recent.stdout


def test_concurrent_sign_ins_keep_one_chain(server: LiveServer, smtp: SmtpCapture) -> None:
    addresses = [f"user{n}@example.com" for n in range(8)]
    for address in addresses:
        server.add_user(address)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda address: _sign_in(server, smtp, address), addresses))
    _intact(server)
    with _engine(server) as engine, engine.connect() as connection:
        seqs = list(connection.execute(text("SELECT seq FROM audit_events ORDER BY id")).scalars())
        head = connection.execute(text("SELECT seq FROM audit_chain")).scalar_one()
    assert seqs == list(range(1, len(seqs) + 1))
    assert head == len(seqs)


def test_events_from_before_the_chain_are_sealed_at_the_first_start(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine, "0004_deployment_key")
        with engine.begin() as connection:
            for n in range(3):
                connection.execute(
                    text(
                        "INSERT INTO audit_events (at, event, outcome, email, amr, detail) "
                        "VALUES (:at, 'account.disabled', 'success', :email, '', '{}')"
                    ),
                    {"at": datetime.now(UTC), "email": f"old{n}@example.com"},
                )
        upgrade(engine)
        assert "4 events checked" in _run(url, "audit", "verify").stdout  # + key recorded
        assert _run(url, "users", "add", "new@example.com").returncode == 0
        assert _run(url, "users", "disable", "new@example.com").returncode == 0
        assert "5 events checked" in _run(url, "audit", "verify").stdout
        with engine.begin() as connection:
            connection.execute(text("UPDATE audit_events SET email = 'x@example.com' WHERE id = 2"))
        broken = _run(url, "audit", "verify")
        engine.dispose()
    assert broken.returncode == 1
    assert "audit chain broken at event 2:" in broken.stderr


def test_after_a_key_adoption_the_new_segment_is_checked(backend: str, tmp_path: Path) -> None:
    other = "another-secret-key-0123456789abcdef01234567"
    with fresh_database(backend, tmp_path) as url:
        assert _run(url, "db", "upgrade").returncode == 0
        assert _run(url, "users", "add", "ops@example.com").returncode == 0
        assert _run(url, "users", "disable", "ops@example.com").returncode == 0
        _intact_url = _run(url, "audit", "verify")
        assert _intact_url.returncode == 0, _intact_url.stderr
        refused = _run(url, "audit", "verify", key=other)
        assert refused.returncode == 1
        assert "sekisho key adopt" in refused.stderr
        adopted = _run(url, "key", "adopt", "--yes", key=other)
        assert adopted.returncode == 0, adopted.stderr
        assert _run(url, "users", "enable", "ops@example.com", key=other).returncode == 0
        after = _run(url, "audit", "verify", key=other)
        assert after.returncode == 0, after.stderr
        assert "2 events checked" in after.stdout
        assert "2 events before the last `sekisho key adopt`" in after.stdout
        assert "1 refusals of processes without the key" in after.stdout


def test_concurrent_transactions_append_to_one_chain(backend: str, tmp_path: Path) -> None:
    """Eight threads, each committing ten transactions that write two events: every
    event gets its own place, in id order, and the chain verifies."""
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        database = Database(engine, Keyring(SECRET_KEY))

        def write(thread: int) -> None:
            for n in range(10):
                with database.transaction() as repos:
                    for part in ("a", "b"):
                        repos.audit.append(
                            AuditEvent(
                                event="test.event",
                                outcome="success",
                                at=datetime.now(UTC),
                                detail={"thread": thread, "n": n, "part": part},
                            )
                        )

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, range(8)))
        verdict = verify_chain(engine, database.seal)
        with engine.connect() as connection:
            seqs = list(
                connection.execute(text("SELECT seq FROM audit_events ORDER BY id")).scalars()
            )
        database.dispose()
    assert verdict.intact, verdict.reason
    assert verdict.checked == 160
    assert seqs == list(range(1, 161))
