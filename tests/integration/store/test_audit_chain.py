"""The tamper-evident audit chain (SECURITY.md case 57), on SQLite and PostgreSQL: real
sign-ins over HTTP write the events, the database is then changed behind Sekisho's back,
and ``sekisho audit verify`` runs as the operator runs it, in a process of its own."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, text

from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent
from sekisho.store.audit_chain import (
    Anchors,
    KnownHeads,
    open_chain,
    read_heads,
    verify_chain,
)
from sekisho.store.database import Database, make_engine
from sekisho.store.deployment import adopt_key
from sekisho.store.migrate import upgrade
from tests.support.cli import run_sekisho
from tests.support.server import SECRET_KEY, LiveServer, fresh_database
from tests.support.smtp import SmtpCapture, link_and_code
from tests.support.statements import driver_statements


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


def _ids(engine: Engine, chain: int = 0) -> list[int]:
    """The ids of one chain's events, in order (on PostgreSQL a transaction that overlaps
    another, such as the mail worker's, seals onto another chain)."""
    with engine.connect() as connection:
        return [
            int(i)
            for i in connection.execute(
                text("SELECT id FROM audit_events WHERE chain = :c ORDER BY id"), {"c": chain}
            ).scalars()
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
            "UPDATE audit_chain SET seq = :seq, hash = :hash WHERE id = 0",
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
    for chain in {line["chain"] for line in lines}:
        seqs = [line["seq"] for line in lines if line["chain"] == chain]
        assert seqs == list(range(1, len(seqs) + 1))
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


def _places(engine: Engine) -> dict[int, list[int]]:
    """Each chain's ``seq`` values in id order."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT chain, seq FROM audit_events WHERE chain IS NOT NULL ORDER BY id")
        ).all()
    places: dict[int, list[int]] = {}
    for chain, seq in rows:
        places.setdefault(int(chain), []).append(int(seq))
    return places


def _heads(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, seq FROM audit_chain")).all()
    return {int(chain): int(seq) for chain, seq in rows}


def test_concurrent_sign_ins_keep_gapless_chains(server: LiveServer, smtp: SmtpCapture) -> None:
    addresses = [f"user{n}@example.com" for n in range(8)]
    for address in addresses:
        server.add_user(address)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda address: _sign_in(server, smtp, address), addresses))
    _intact(server)
    with _engine(server) as engine:
        places, heads = _places(engine), _heads(engine)
    for chain, seqs in places.items():
        assert seqs == list(range(1, len(seqs) + 1))
        assert heads[chain] == len(seqs)


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


def _write_pairs(database: Database, transactions: int, **tags: object) -> None:
    """``transactions`` transactions of two events each, ``tags`` in their detail."""
    for n in range(transactions):
        with database.transaction() as repos:
            for part in ("a", "b"):
                repos.audit.append(
                    AuditEvent(
                        event="test.event",
                        outcome="success",
                        at=datetime.now(UTC),
                        detail={**tags, "n": n, "part": part},
                    )
                )


def test_concurrent_transactions_append_to_gapless_chains(backend: str, tmp_path: Path) -> None:
    """Eight threads, each committing ten transactions that write two events: every
    event gets its own place in its chain, in id order, and the chains verify."""
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        database = Database(engine, Keyring(SECRET_KEY))

        def write(thread: int) -> None:
            _write_pairs(database, 10, thread=thread)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, range(8)))
        verdict = verify_chain(engine, database.seal)
        places = _places(engine)
        database.dispose()
    assert verdict.intact, verdict.reason
    assert verdict.checked == 160
    assert sum(len(seqs) for seqs in places.values()) == 160
    for seqs in places.values():
        assert seqs == list(range(1, len(seqs) + 1))


def _event(n: int) -> AuditEvent:
    return AuditEvent(event="test.event", outcome="success", at=datetime.now(UTC), detail={"n": n})


def _write(database: Database, *numbers: int) -> None:
    with database.transaction() as repos:
        for n in numbers:
            repos.audit.append(_event(n))


@contextmanager
def _holding(engine: Engine, *chains: int) -> Iterator[None]:
    """Another transaction holds these chains' heads, as a concurrent writer would."""
    with engine.connect() as connection, connection.begin():
        for chain in chains:
            connection.execute(
                text("SELECT seq FROM audit_chain WHERE id = :c FOR UPDATE"), {"c": chain}
            )
        yield


def _open(engine: Engine, database: Database) -> None:
    """Every chain's head, as the first start of a process makes them."""
    with engine.begin() as connection:
        open_chain(connection, database.seal)


def _chain_of(engine: Engine, chain: int) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [
            dict(row)
            for row in connection.execute(
                text("SELECT * FROM audit_events WHERE chain = :c ORDER BY id"), {"c": chain}
            ).mappings()
        ]


def _broken(engine: Engine, database: Database) -> tuple[int | None, str]:
    verdict = verify_chain(engine, database.seal)
    assert not verdict.intact
    return verdict.broken_at, verdict.reason


@contextmanager
def _postgresql(tmp_path: Path) -> Iterator[tuple[Engine, Database]]:
    """A new PostgreSQL database, migrated, its chains opened and event 0 sealed."""
    with fresh_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        database = Database(engine, Keyring(SECRET_KEY))
        try:
            _open(engine, database)
            _write(database, 0)
            yield engine, database
        finally:
            database.dispose()
            engine.dispose()


def test_postgresql_writers_that_overlap_seal_onto_other_chains_and_tampering_in_any_is_found(
    tmp_path: Path,
) -> None:
    with _postgresql(tmp_path) as (engine, database):
        # A writer that finds chain 0's head held takes the next free one, and the
        # process keeps sealing onto the head it left there (its known head).
        with _holding(engine, 0):
            _write(database, 1, 2)
            _write(database, 3)
        with _holding(engine, 0, 1):
            _write(database, 4, 5, 6)
        _write(database, 7)
        with engine.connect() as connection:
            used: dict[int, int] = dict(
                connection.execute(
                    text("SELECT chain, count(*) FROM audit_events GROUP BY chain")
                ).all()
            )
        assert used == {0: 1, 1: 3, 2: 4}
        assert verify_chain(engine, database.seal).checked == 8
        second, third = _chain_of(engine, 1), _chain_of(engine, 2)

        # A field changed in chain 2.
        _sql(engine, "UPDATE audit_events SET outcome = 'x' WHERE id = :id", id=third[1]["id"])
        assert _broken(engine, database)[0] == third[1]["id"]
        _sql(
            engine,
            "UPDATE audit_events SET outcome = 'success' WHERE id = :id",
            id=third[1]["id"],
        )
        assert verify_chain(engine, database.seal).intact

        # An event deleted from chain 1: the next one of chain 1 is out of place.
        _sql(engine, "DELETE FROM audit_events WHERE id = :id", id=second[0]["id"])
        broken_at, reason = _broken(engine, database)
        assert broken_at == second[1]["id"]
        assert "of chain 1 where event 1 belongs" in reason
        with engine.begin() as connection:
            _insert(connection, second[0])
        assert verify_chain(engine, database.seal).intact

        # Chains 1 and 2 renamed into each other, events and heads: every seal
        # covers its chain, so the first event of each no longer matches.
        for old, new in ((1, -1), (2, 1), (-1, 2)):
            _sql(engine, "UPDATE audit_events SET chain = :n WHERE chain = :o", n=new, o=old)
            _sql(engine, "UPDATE audit_chain SET id = :n WHERE id = :o", n=new, o=old)
        broken_at, reason = _broken(engine, database)
        assert broken_at == third[0]["id"]
        assert "does not match its seal" in reason
        for old, new in ((1, -1), (2, 1), (-1, 2)):
            _sql(engine, "UPDATE audit_events SET chain = :n WHERE chain = :o", n=new, o=old)
            _sql(engine, "UPDATE audit_chain SET id = :n WHERE id = :o", n=new, o=old)
        assert verify_chain(engine, database.seal).intact

        # A whole chain deleted, head and events: the heads of every chain must be
        # there.
        with engine.connect() as connection:
            head = dict(
                connection.execute(text("SELECT * FROM audit_chain WHERE id = 2")).mappings().one()
            )
        _sql(engine, "DELETE FROM audit_events WHERE chain = 2")
        _sql(engine, "DELETE FROM audit_chain WHERE id = 2")
        assert "the head of chain 2 is missing" in _broken(engine, database)[1]
        with engine.begin() as connection:
            for row in third:
                _insert(connection, row)
            connection.execute(
                text("INSERT INTO audit_chain (id, seq, hash, mac) VALUES (2, :s, :h, :m)"),
                {"s": head["seq"], "h": head["hash"], "m": head["mac"]},
            )
        assert verify_chain(engine, database.seal).intact


def test_an_anchor_finds_a_chain_cut_back_to_a_head_it_really_had(tmp_path: Path) -> None:
    """Chain 1's newest event deleted and its head put back to a copy taken before that
    event: every link and MAC left is genuine, but an anchor sealed in chain 0 recorded
    chain 1 further on."""
    with _postgresql(tmp_path) as (engine, database):
        with _holding(engine, 0):
            _write(database, 1)
        with engine.connect() as connection:
            copied = dict(
                connection.execute(text("SELECT * FROM audit_chain WHERE id = 1")).mappings().one()
            )
        with _holding(engine, 0):
            _write(database, 2)
        cut = _chain_of(engine, 1)[-1]
        database.anchors = Anchors(every=0.0)
        _write(database, 3)  # chain 0, followed by an anchor of the other heads
        with engine.connect() as connection:
            anchor = dict(
                connection.execute(
                    text(
                        "SELECT id, chain, detail FROM audit_events "
                        "WHERE event = 'audit.chains_anchored'"
                    )
                )
                .mappings()
                .one()
            )
        assert anchor["chain"] == 0
        assert json.loads(anchor["detail"])["heads"]["1"] == [2, cut["hash"]]
        assert verify_chain(engine, database.seal).intact

        _sql(engine, "DELETE FROM audit_events WHERE id = :id", id=cut["id"])
        _sql(
            engine,
            "UPDATE audit_chain SET seq = :s, hash = :h, mac = :m WHERE id = 1",
            s=copied["seq"],
            h=copied["hash"],
            m=copied["mac"],
        )
        broken_at, reason = _broken(engine, database)
        assert broken_at == _chain_of(engine, 1)[-1]["id"]
        assert f"the anchor {anchor['id']} recorded event 2 of chain 1" in reason
        assert "the chain ends at event 1" in reason


def test_a_key_adoption_opens_the_new_segment_in_every_chain_that_holds_events(
    tmp_path: Path,
) -> None:
    other = "another-secret-key-0123456789abcdef01234567"
    with _postgresql(tmp_path) as (engine, database):
        with _holding(engine, 0):
            _write(database, 1)
        adopt_key(engine, Keyring(other), now=datetime.now(UTC))
        adopted = Database(engine, Keyring(other))
        _write(adopted, 2)
        verdict = verify_chain(engine, adopted.seal)
        marks = [row["event"] for row in _chain_of(engine, 1)]
        adopted.dispose()
    assert verdict.intact, verdict.reason
    assert (verdict.checked, verdict.earlier_key) == (3, 2)
    assert marks == ["test.event", "audit.chain_rekeyed"]


WRITER = """
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent
from sekisho.store.database import Database, make_engine

database = Database(make_engine(sys.argv[1]), Keyring(sys.argv[2]))


def write(thread: int) -> None:
    for n in range(15):
        with database.transaction() as repos:
            for part in ("a", "b"):
                repos.audit.append(
                    AuditEvent(
                        event="test.event",
                        outcome="success",
                        at=datetime.now(UTC),
                        detail={"process": sys.argv[3], "thread": thread, "n": n, "part": part},
                    )
                )


with ThreadPoolExecutor(max_workers=4) as pool:
    list(pool.map(write, range(4)))
database.dispose()
"""


def test_two_processes_writing_at_once_on_postgresql_leave_chains_that_verify(
    tmp_path: Path,
) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        assert _run(url, "db", "upgrade").returncode == 0
        writers = [
            subprocess.Popen([sys.executable, "-c", WRITER, url, SECRET_KEY, name])
            for name in ("one", "two")
        ]
        assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
        engine = make_engine(url)
        try:
            places = _places(engine)
            with engine.connect() as connection:
                by_process: dict[str, int] = dict(
                    connection.execute(
                        text(
                            "SELECT detail::json->>'process', count(*) FROM audit_events "
                            "WHERE event = 'test.event' GROUP BY 1"
                        )
                    ).all()
                )
        finally:
            engine.dispose()
        verdict = _run(url, "audit", "verify")
    assert by_process == {"one": 120, "two": 120}
    assert len(places) > 1, "overlapping writers queued on one chain"
    for seqs in places.values():
        assert seqs == list(range(1, len(seqs) + 1))
    assert verdict.returncode == 0, verdict.stderr
    assert "241 events checked" in verdict.stdout  # and the key recorded by verify itself


def test_sqlite_seals_onto_the_head_it_left_and_rereads_one_moved_by_another_writer(
    tmp_path: Path,
) -> None:
    """A process seals onto the head its last transaction left without reading it (one
    compare-and-set, then the events); after another process's transaction or a rolled
    back one of its own it reads the head again, and the chain verifies."""
    with fresh_database("sqlite", tmp_path) as url:
        engine, other_engine = make_engine(url), make_engine(url)
        upgrade(engine)
        database = Database(engine, Keyring(SECRET_KEY))
        other = Database(other_engine, Keyring(SECRET_KEY))
        _open(engine, database)
        statements = _chain_statements(engine)
        _write(database, 1)
        statements.clear()
        _write(database, 2, 3)
        # No read of the head: its compare-and-set, then the two events.
        assert [s.split(" ", 2)[:2] for s in statements] == [
            ["UPDATE", "audit_chain"],
            ["INSERT", "INTO"],
            ["INSERT", "INTO"],
        ], statements
        assert all("audit_events" in s for s in statements[1:])
        _write(other, 4)  # another process moves the head
        _write(database, 5)
        with suppress(RuntimeError), database.transaction() as repos:
            repos.audit.append(_event(6))
            repos.audit.flush()
            raise RuntimeError("rolled back after sealing")
        _write(database, 7)
        verdict = verify_chain(engine, database.seal)
        numbers = [json.loads(row["detail"])["n"] for row in _chain_of(engine, 0)]
        seqs = [row["seq"] for row in _chain_of(engine, 0)]
        database.dispose()
        other.dispose()
    assert verdict.intact, verdict.reason
    assert numbers == [1, 2, 3, 4, 5, 7]
    assert seqs == [1, 2, 3, 4, 5, 6]


def _chain_statements(engine: Engine) -> list[str]:
    """The statements about the audit chain that ``engine``'s connections run (prepared
    ones too), from now on."""
    return driver_statements(engine, naming=("audit_chain", "audit_events"))


def test_postgresql_seals_in_one_statement_and_interleaves_with_another_process_on_a_chain(
    tmp_path: Path,
) -> None:
    """A process seals onto the head its last seal left with one statement (head moved
    and events inserted together); another process (its own engine and known heads, made
    to start on the same chain, which live processes never are) seals onto that chain in
    between, so the process's next seal misses, reads the head and seals after the
    other's events. Every event lands on chain 0 in order and ``verify`` passes."""
    with fresh_database("postgresql", tmp_path) as url:
        assert _run(url, "db", "upgrade").returncode == 0
        engine, other_engine = make_engine(url), make_engine(url)
        database = Database(engine, Keyring(SECRET_KEY))
        other = Database(other_engine, Keyring(SECRET_KEY))
        other.known_heads = KnownHeads(lambda: 0)
        try:
            _open(engine, database)
            _write(database, 1)  # reads chain 0's head: nothing known yet
            statements = _chain_statements(engine)
            _write(database, 2, 3)
            assert len(statements) == 1, statements
            assert statements[0].startswith("WITH head AS")
            for n in (5, 8):
                statements.clear()
                _write(other, n - 1)
                _write(database, n)  # the head moved: a miss, a locked read, the seal
                assert len(statements) == 3, statements
                assert "FOR UPDATE SKIP LOCKED" in statements[1]
                statements.clear()
                _write(database, n + 1)
                assert len(statements) == 1, statements
            chain = _chain_of(engine, 0)
            others = _places(engine)
            counts = (database.known_heads.seals, database.known_heads.misses)
        finally:
            database.dispose()
            other.dispose()
            engine.dispose()
        verdict = _run(url, "audit", "verify")
    assert verdict.returncode == 0, verdict.stderr
    assert list(others) == [0]
    assert counts == (6, 2)
    assert [row["seq"] for row in chain] == list(range(1, len(chain) + 1))
    assert [json.loads(row["detail"])["n"] for row in chain] == list(range(1, 10))
    ids = [row["id"] for row in chain]
    assert ids == sorted(ids)


def test_a_second_seal_in_a_transaction_continues_the_head_the_first_left(
    tmp_path: Path,
) -> None:
    """A transaction that flushes twice seals both times onto the one head it holds,
    never onto a second chain it knows (two head locks could deadlock)."""
    with _postgresql(tmp_path) as (engine, database):
        with _holding(engine, 0):
            _write(database, 1)
        with engine.connect() as connection:
            heads = read_heads(connection)
        for chain in (0, 1):  # as after two of its transactions sealed there at once
            lease = database.known_heads.lease()
            lease.left = heads[chain]
            lease.settle()
        with database.transaction() as repos:
            repos.audit.append(_event(2))
            repos.audit.flush()
            repos.audit.append(_event(3))
        _write(database, 4)
        verdict = verify_chain(engine, database.seal)
        second = [json.loads(row["detail"])["n"] for row in _chain_of(engine, 1)]
        first = [json.loads(row["detail"])["n"] for row in _chain_of(engine, 0)]
    assert verdict.intact, verdict.reason
    assert (first, second) == ([0, 2, 3, 4], [1])


def seal_in_process(url: str, name: str, start: Any, results: Any) -> None:
    """One process of :func:`test_processes_sealing_at_once_start_apart_and_rarely_meet`:
    four threads, each committing twenty transactions of two events."""
    database = Database(make_engine(url), Keyring(SECRET_KEY))

    def write(thread: int) -> None:
        _write_pairs(database, 20, process=name, thread=thread)

    try:
        start.wait()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(write, range(4)))
        results.put((name, database.known_heads.seals, database.known_heads.misses))
    finally:
        database.dispose()


def test_processes_sealing_at_once_start_apart_and_rarely_meet(tmp_path: Path) -> None:
    """Two processes (as ``serve --workers 2`` runs them) seal at once: each claims its
    own starting chain (0 and 8) and its threads fill the chains from there (a read
    reserves its chain first), so they seal on separate halves and no remembered head is
    ever found moved or held (a miss; with every process from chain 0 they met on the
    same chains); every event is there once and the chains verify."""
    context = multiprocessing.get_context("spawn")
    with fresh_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        _open(engine, Database(engine, Keyring(SECRET_KEY)))
        start, results = context.Barrier(2), context.Queue()
        processes = [
            context.Process(target=seal_in_process, args=(url, name, start, results))
            for name in ("one", "two")
        ]
        for process in processes:
            process.start()
        counts = sorted(results.get(timeout=300) for _ in processes)
        for process in processes:
            process.join(timeout=60)
        try:
            places = _places(engine)
        finally:
            engine.dispose()
        verdict = _run(url, "audit", "verify")
    assert [process.exitcode for process in processes] == [0, 0]
    assert counts == [("one", 80, 0), ("two", 80, 0)]
    assert {chain // 8 for chain in places} == {0, 1}, places
    assert sum(len(seqs) for seqs in places.values()) == 320
    for seqs in places.values():
        assert seqs == list(range(1, len(seqs) + 1))
    assert verdict.returncode == 0, verdict.stderr
    assert "321 events checked" in verdict.stdout  # and the key recorded by verify itself
