"""Prepared statements (``store/prepared.py``) against SQLAlchemy's own execution, on
SQLite and PostgreSQL: a row written by either reads identically through the other,
and is stored as the same bytes (SQLite's text datetimes, integer booleans, blobs, JSON
kept as text); prepared statements run in the caller's transaction and raise
SQLAlchemy's errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent, Passkey
from sekisho.oidc.records import Grant
from sekisho.policy.confirmations import Confirmation
from sekisho.store.audit_chain import verify_chain
from sekisho.store.confirmations import SqlConfirmations
from sekisho.store.database import Database, make_engine
from sekisho.store.migrate import upgrade
from sekisho.store.oidc import SqlOidc
from sekisho.store.oidc_tokens import SqlOidcTokens
from sekisho.store.prepared import Prepared
from sekisho.store.repositories import _stored_event
from sekisho.store.tables import (
    audit_events,
    failure_counters,
    flows,
    oidc_access_tokens,
    oidc_clients,
    oidc_codes,
    oidc_grants,
    oidc_refresh_tokens,
    passkeys,
    sessions,
    transaction_confirmations,
    users,
)
from tests.support.records import oidc_client_row, passkey
from tests.support.server import fresh_database

# Microseconds, and a zone other than UTC (stored as UTC).
WHEN = datetime(2026, 11, 27, 23, 59, 58, 123456, tzinfo=UTC)
OFFSET = datetime(2026, 1, 2, 12, 4, 5, 6, tzinfo=timezone(timedelta(hours=9)))
LATER = (WHEN + timedelta(hours=1)).astimezone(timezone(timedelta(hours=9)))


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        db = Database(engine, Keyring("test-prepared-secret"))
        yield db
        db.dispose()


def _user(key: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"user-{key}",
        "email": f"{key}@example.com",
        "status": "active",
        "display_name": "名前 é" if key == "a" else None,
        "created_at": WHEN,
        "email_verified_at": OFFSET if key == "a" else None,
        "last_sign_in_at": None,
        "webauthn_handle": None,
        "attributes": '{"groups": ["a", "b"], "n": 1.5, "ok": true}',
        "migration_mode": None,
        "imported_at": None,
        "password_retired_at": None,
        "tier": None,
        "locale": "ja",
    }
    row.update(values)
    return row


def _passkey(key: str, user_id: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"pk-{key}",
        "user_id": user_id,
        "credential_id": f"cred-{key}",
        "public_key": bytes(range(256)) + b"\x00",
        "sign_count": 2**40,
        "transports": '["internal", "hybrid"]',
        "aaguid": "00000000-0000-0000-0000-000000000000",
        "backup_eligible": True,
        "backup_state": False,
        "user_verified": True,
        "attestation_format": "packed",
        "name": "鍵",
        "created_at": WHEN,
        "last_used_at": None,
        "attestation_trusted": False,
    }
    row.update(values)
    return row


def _flow(key: str) -> dict[str, Any]:
    return {
        "id": f"flow-{key}",
        "kind": "email_signin",
        "state": "pending",
        "email": f"{key}@example.com",
        "binding_digest": "b" * 64,
        "approval_number": 42,
        "requested_ip": "192.0.2.1",
        "requested_user_agent": "test",
        "locale": "en",
        "created_at": WHEN,
        "expires_at": OFFSET,
        "finished_at": None,
    }


def _raw(connection: Connection, table: Table, key: str, column: str = "id") -> tuple[Any, ...]:
    """The row as the driver returns it, untouched by any type processing."""
    row = connection.exec_driver_sql(f"SELECT * FROM {table.name} WHERE {column} = '{key}'").first()
    assert row is not None
    return tuple(bytes(value) if isinstance(value, memoryview) else value for value in row)


def _normalised(row: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value.astimezone(UTC) if isinstance(value, datetime) else value
        for name, value in row.items()
    }


@pytest.mark.parametrize(
    ("table", "rows"),
    [
        (users, [_user("a"), _user("b")]),
        (flows, [_flow("a"), _flow("b")]),
    ],
)
def test_a_row_written_either_way_is_stored_and_read_the_same(
    database: Database, table: Table, rows: list[dict[str, Any]]
) -> None:
    by_prepared, by_core = rows
    by_id = select(table).where(table.c.id == bindparam("p_id"))
    with database.transaction() as repos:
        c = repos.connection
        Prepared(insert(table), keys=tuple(by_prepared)).run(c, by_prepared)
        c.execute(insert(table), by_core)
        for row in rows:
            expected = _normalised(row)
            assert dict(c.execute(by_id, {"p_id": row["id"]}).mappings().one()) == expected
            assert Prepared(by_id).mapping(c, {"p_id": row["id"]}) == expected
            first = Prepared(by_id).first(c, {"p_id": row["id"]})
            assert first == tuple(expected.values())
        # Stored alike: only the keys and the addresses told the two rows apart.
        raw_prepared, raw_core = _raw(c, table, by_prepared["id"]), _raw(c, table, by_core["id"])
        differing = [
            column.name
            for column, one, other in zip(table.c, raw_prepared, raw_core, strict=True)
            if one != other
        ]
        assert set(differing) <= {"id", "email", "display_name", "email_verified_at", "expires_at"}


def test_blobs_booleans_and_big_integers_round_trip(database: Database) -> None:
    with database.transaction() as repos:
        c = repos.connection
        c.execute(insert(users), _user("owner"))
        written = _passkey("a", "user-owner")
        Prepared(insert(passkeys), keys=tuple(written)).run(c, written)
        c.execute(insert(passkeys), _passkey("b", "user-owner", backup_state=True))
        by_id = Prepared(select(passkeys).where(passkeys.c.id == bindparam("p_id")))
        for key, backup_state in (("a", False), ("b", True)):
            row = by_id.mapping(c, {"p_id": f"pk-{key}"})
            core = c.execute(select(passkeys).where(passkeys.c.id == f"pk-{key}")).mappings().one()
            assert row == dict(core)
            assert row is not None
            assert row["public_key"] == bytes(range(256)) + b"\x00"
            assert row["backup_state"] is backup_state
            assert row["backup_eligible"] is True
            assert row["sign_count"] == 2**40
        raw = {key: _raw(c, passkeys, f"pk-{key}") for key in "ab"}
        names = [column.name for column in passkeys.c]
        differing = {
            names[index]
            for index, (one, other) in enumerate(zip(raw["a"], raw["b"], strict=True))
            if one != other
        }
        assert differing == {"id", "credential_id", "backup_state"}


def test_update_returning_and_a_later_read_see_each_other(database: Database) -> None:
    move = Prepared(
        update(flows)
        .where(flows.c.id == bindparam("p_id"), flows.c.state == "pending")
        .values(state="approved", finished_at=bindparam("p_now"))
        .returning(flows.c.id, flows.c.finished_at)
    )
    with database.transaction() as repos:
        repos.connection.execute(insert(flows), _flow("a"))
    with database.transaction() as repos:
        assert move.first(repos.connection, {"p_id": "flow-a", "p_now": OFFSET}) == (
            "flow-a",
            OFFSET.astimezone(UTC),
        )
        assert move.first(repos.connection, {"p_id": "flow-a", "p_now": WHEN}) is None
    with database.reading() as repos:
        row = repos.connection.execute(select(flows.c.finished_at)).scalar_one()
    assert row == OFFSET.astimezone(UTC)


def test_a_rolled_back_transaction_takes_the_prepared_writes_with_it(database: Database) -> None:
    def write_and_fail() -> None:
        with database.transaction() as repos:
            Prepared(insert(users), keys=tuple(_user("a"))).run(repos.connection, _user("a"))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        write_and_fail()
    with database.reading() as repos:
        assert repos.users.by_id("user-a") is None


def test_driver_errors_are_raised_as_sqlalchemy_raises_them(database: Database) -> None:
    add = Prepared(insert(users), keys=tuple(_user("a")))

    def write_twice() -> None:
        with database.transaction() as repos:
            add.run(repos.connection, _user("a"))
            add.run(repos.connection, _user("a", id="user-other"))

    with pytest.raises(IntegrityError):
        write_twice()
    with database.reading() as repos:
        assert repos.users.by_id("user-a") is None


def test_a_connection_outside_a_transaction_begins_one(database: Database) -> None:
    with database.engine.connect() as connection:
        Prepared(insert(users), keys=tuple(_user("a"))).run(connection, _user("a"))
        assert connection.in_transaction()
        connection.rollback()
    with database.reading() as repos:
        assert repos.users.by_id("user-a") is None


def test_many_rows_are_inserted_in_order_and_counts_are_sqlalchemys(database: Database) -> None:
    add = Prepared(insert(users), keys=tuple(_user("a")))
    rename = Prepared(
        update(users).where(users.c.status == bindparam("p_status")).values(locale="en")
    )
    with database.transaction() as repos:
        c = repos.connection
        add.run_many(c, [])
        add.run_many(c, [_user("a"), _user("b"), _user("c", status="disabled")])
        rows = c.execute(select(users).order_by(users.c.id)).mappings().all()
        assert [dict(row) for row in rows] == [
            _normalised(_user(key, **({"status": "disabled"} if key == "c" else {})))
            for key in "abc"
        ]
        assert rename.count(c, {"p_status": "active"}) == 2
        assert rename.count(c, {"p_status": "gone"}) == 0
        core = c.execute(update(users).where(users.c.status == "disabled").values(locale="en"))
        assert core.rowcount == rename.count(c, {"p_status": "disabled"}) == 1


def test_statements_that_cannot_be_prepared_are_refused_at_first_use(database: Database) -> None:
    with pytest.raises(ValueError, match="give keys"):
        Prepared(insert(users))
    expanding = Prepared(select(users).where(users.c.status.in_(["active", "disabled"])))
    with pytest.raises(ValueError, match="expanding"), database.reading() as repos:
        expanding.first(repos.connection, {})


# -- the statements the stores prepare: each store's own writes and reads, against rows
# -- SQLAlchemy's execution wrote or reads.


def _core(c: Connection, table: Table, **where: Any) -> dict[str, Any]:
    query = select(table).where(*(table.c[name] == value for name, value in where.items()))
    return dict(c.execute(query).mappings().one())


def _differing(c: Connection, table: Table, column: str, one: str, other: str) -> set[str]:
    """The columns whose stored bytes differ between two rows (named as the database
    orders them: a migration may have added a column after others)."""
    names = list(c.exec_driver_sql(f"SELECT * FROM {table.name} WHERE 1 = 0").keys())
    raw_one, raw_other = _raw(c, table, one, column), _raw(c, table, other, column)
    return {
        name
        for name, first, second in zip(names, raw_one, raw_other, strict=True)
        if first != second
    }


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        event="test.event",
        outcome="success",
        at=OFFSET + timedelta(seconds=n),
        ip="192.0.2.1",
        user_agent="テスト",
        email=f"{n}@example.com",
        amr=("hwk", "user"),
        aal=2,
        detail={"n": n, "名": "é"},
        request_id=f"request-{n}",
    )


def test_sealed_events_are_stored_as_core_stores_them_and_the_chain_verifies(
    database: Database,
) -> None:
    """The seal (prepared: the head's compare-and-set and the events' insert on SQLite,
    the one statement on PostgreSQL) onto heads SQLAlchemy wrote, read by SQLAlchemy."""
    for numbers in ((1,), (2, 3), (4,)):  # the first reads the head; the others know it
        with database.transaction() as repos:
            for n in numbers:
                repos.audit.append(_event(n))
    assert verify_chain(database.engine, database.seal).intact
    with database.transaction() as repos:
        c = repos.connection
        rows = c.execute(select(audit_events).order_by(audit_events.c.id)).mappings().all()
        events = [row for row in rows if row["event"] == "test.event"]
        assert [row["seq"] for row in events] == [row["seq"] for row in rows][-4:]
        for n, row in enumerate(events, start=1):
            stored = _stored_event(_event(n))
            assert {name: row[name] for name in stored} == _normalised(stored)
        # The same values inserted by SQLAlchemy are stored as the same bytes.
        copy = {name: events[0][name] for name in (*stored, "chain", "key_id", "hash")}
        c.execute(insert(audit_events), {**copy, "id": 10_000, "seq": 10_000})
        assert _differing(c, audit_events, "id", str(events[0]["id"]), "10000") == {"id", "seq"}


def test_failure_counters_count_rows_either_way_wrote(database: Database) -> None:
    with database.transaction() as repos:
        c = repos.connection
        assert repos.failures.record_failure("a@example.com", "email_code", now=WHEN) == 1
        assert repos.failures.record_failure("a@example.com", "email_code", now=OFFSET) == 2
        core = _core(c, failure_counters, subject="a@example.com")
        assert core == {
            "subject": "a@example.com",
            "method": "email_code",
            "consecutive": 2,
            "last_failure_at": OFFSET.astimezone(UTC),
        }
        c.execute(insert(failure_counters), {**core, "subject": "b@example.com"})
        assert _differing(c, failure_counters, "subject", "a@example.com", "b@example.com") == {
            "subject"
        }
        assert repos.failures.record_failure("b@example.com", "email_code", now=WHEN) == 3
        counted = repos.failures.get("b@example.com", "email_code")
        assert counted is not None
        assert (counted.consecutive, counted.last_failure_at) == (3, WHEN)


def _session_row(key: str, user_id: str) -> dict[str, Any]:
    return {
        "id": f"session-{key}",
        "token_digest": f"digest-{key}",
        "user_id": user_id,
        "created_at": WHEN,
        "last_seen_at": WHEN,
        "auth_time": WHEN,
        "expires_at": WHEN + timedelta(days=1),
        "ip": "192.0.2.1",
        "user_agent": "テスト",
        "amr": "hwk user",
        "aal": 2,
        "revoked_at": None,
        "revoked_reason": None,
        "restriction": None,
        "idle_seconds": 600,
    }


def test_a_touched_session_is_stored_as_core_stores_it(database: Database) -> None:
    with database.transaction() as repos:
        c = repos.connection
        c.execute(insert(users), _user("owner"))
        c.execute(insert(sessions), _session_row("a", "user-owner"))
        c.execute(insert(sessions), _session_row("b", "user-owner") | {"last_seen_at": OFFSET})
        repos.sessions.touch("session-a", now=OFFSET)
        assert _core(c, sessions, id="session-a")["last_seen_at"] == OFFSET.astimezone(UTC)
        assert _differing(c, sessions, "id", "session-a", "session-b") == {"id", "token_digest"}
        session = repos.sessions.by_token("digest-a")
        assert session is not None
        assert session.last_seen_at == OFFSET


def _passkey_record(key: str, user_id: str) -> Passkey:
    return passkey(
        f"pk-{key}",
        user_id,
        WHEN,
        credential_id=f"cred-{key}".encode(),
        public_key=bytes(range(256)) + b"\x00",
        sign_count=2**40,
        transports=("internal", "hybrid"),
        backup_eligible=True,
        attestation_format="packed",
        name="鍵",
        attestation_trusted=True,
    )


def test_an_added_passkey_is_stored_as_core_stores_it_and_added_once(database: Database) -> None:
    with database.transaction() as repos:
        c = repos.connection
        c.execute(insert(users), _user("owner"))
        assert repos.passkeys.add(_passkey_record("a", "user-owner"))
        added = _core(c, passkeys, id="pk-a")
        c.execute(insert(passkeys), {**added, "id": "pk-b", "credential_id": "other"})
        assert _differing(c, passkeys, "id", "pk-a", "pk-b") == {"id", "credential_id"}
        # The same credential again: nothing added, nothing changed.
        again = replace(_passkey_record("a", "user-owner"), id="pk-c", name="other")
        assert not repos.passkeys.add(again)
        assert c.execute(select(passkeys.c.id).where(passkeys.c.id == "pk-c")).first() is None
        assert _core(c, passkeys, id="pk-a") == added
        read = repos.passkeys.by_credential_id(b"cred-a")
        assert read == _passkey_record("a", "user-owner")


def _confirmation(key: str) -> Confirmation:
    return Confirmation(
        id=f"confirm-{key}",
        client_id="client-a",
        user_id="user-owner",
        session_id="session-a",
        action="payment",
        details={"amount": 12345, "payee": "相手"},
        details_hash="h" * 64,
        return_uri="https://rp.example/cb",
        created_at=WHEN,
        expires_at=WHEN + timedelta(minutes=5),
    )


def test_confirmations_read_and_spend_rows_either_way_wrote(database: Database) -> None:
    details = '{"amount":12345,"payee":"相手"}'
    with database.transaction() as repos:
        c = repos.connection
        c.execute(insert(users), _user("owner"))
        c.execute(insert(oidc_clients), oidc_client_row("client-a", WHEN))
        confirmations = SqlConfirmations(c)
        confirmations.add(_confirmation("a"), canonical_details=details)
        written = _core(c, transaction_confirmations, id="confirm-a")
        c.execute(insert(transaction_confirmations), {**written, "id": "confirm-b"})
        assert _differing(c, transaction_confirmations, "id", "confirm-a", "confirm-b") == {"id"}
        for key in "ab":
            assert confirmations.get(f"confirm-{key}") == replace(
                _confirmation(key), details={"amount": 12345, "payee": "相手"}
            )
            confirm: dict[str, Any] = {
                "now": WHEN,
                "expires_at": LATER,
                "passkey_id": "pk-a",
                "acr": "phr",
                "amr": ("hwk", "user"),
                "token": "token",
            }
            assert confirmations.confirm(f"confirm-{key}", **confirm)
            assert not confirmations.confirm(f"confirm-{key}", **confirm)  # once
        core = _core(c, transaction_confirmations, id="confirm-b")
        assert (core["confirmed_at"], core["expires_at"], core["amr"]) == (
            WHEN,
            LATER.astimezone(UTC),
            "hwk user",
        )
        redeemed = confirmations.redeem("confirm-b", client_id="client-a", now=WHEN)
        assert redeemed is not None
        assert redeemed.redeemed_at == WHEN
        assert confirmations.redeem("confirm-b", client_id="client-a", now=WHEN) is None
        assert confirmations.redeem("confirm-a", client_id="client-other", now=WHEN) is None


def _grant(key: str) -> Grant:
    return Grant(
        id=f"grant-{key}",
        client_id="client-a",
        user_id="user-owner",
        session_id="session-a",
        scope=("openid", "email"),
        nonce="nonce 名",
        auth_time=LATER.astimezone(UTC),
        amr=("hwk", "user"),
        acr="phr",
        created_at=WHEN,
    )


def test_oidc_grants_codes_and_tokens_read_and_spend_rows_either_way_wrote(
    database: Database,
) -> None:
    with database.transaction() as repos:
        c = repos.connection
        c.execute(insert(users), _user("owner"))
        c.execute(insert(sessions), _session_row("a", "user-owner"))
        c.execute(insert(oidc_clients), oidc_client_row("client-a", WHEN))
        oidc, tokens = SqlOidc(c), SqlOidcTokens(c)
        assert oidc.client("client-a") is not None
        oidc.add_grant(_grant("a"))
        c.execute(
            insert(oidc_grants),
            {**_core(c, oidc_grants, id="grant-a"), "id": "grant-b"},
        )
        assert _differing(c, oidc_grants, "id", "grant-a", "grant-b") == {"id"}
        assert [oidc.grant(f"grant-{key}") for key in "ab"] == [_grant("a"), _grant("b")]

        code: dict[str, Any] = {
            "grant_id": "grant-a",
            "client_id": "client-a",
            "redirect_uri": "https://rp.example/cb",
            "code_challenge": "c" * 43,
            "expires_at": LATER,
        }
        oidc.add_code("code-a", **code)
        c.execute(insert(oidc_codes), {**_core(c, oidc_codes, digest="code-a"), "digest": "code-b"})
        assert _differing(c, oidc_codes, "digest", "code-a", "code-b") == {"digest"}
        for key in "ab":
            assert oidc.redeemed_code_grant(f"code-{key}") is None
            redeemed = oidc.redeem_code(f"code-{key}", now=WHEN)
            assert redeemed is not None
            assert redeemed.expires_at == LATER
            assert oidc.redeem_code(f"code-{key}", now=WHEN) is None  # once
            assert oidc.redeemed_code_grant(f"code-{key}") == "grant-a"
        assert _core(c, oidc_codes, digest="code-b")["redeemed_at"] == WHEN

        oidc.add_access_token("jti-a", grant_id="grant-a", expires_at=LATER)
        c.execute(
            insert(oidc_access_tokens),
            {"jti": "jti-b", "grant_id": "grant-b", "expires_at": LATER},
        )
        assert _differing(c, oidc_access_tokens, "jti", "jti-a", "jti-b") == {"jti", "grant_id"}
        for key in "ab":
            found = oidc.grant_and_session_of_access_token(f"jti-{key}", now=WHEN)
            assert found is not None
            grant, activity = found
            assert grant == _grant(key)
            assert activity is not None
            assert (activity.last_seen_at, activity.aal) == (WHEN, 2)
            assert oidc.grant_of_access_token(f"jti-{key}", now=WHEN) == _grant(key)
            assert oidc.grant_and_session(f"grant-{key}", now=WHEN) == found
        assert oidc.grant_of_access_token("jti-a", now=LATER) is None  # expired
        assert tokens.revoke_access_token("jti-b", now=WHEN)
        assert not tokens.revoke_access_token("jti-b", now=WHEN)
        assert _core(c, oidc_access_tokens, jti="jti-b")["revoked_at"] == WHEN

        refresh: dict[str, Any] = {
            "grant_id": "grant-a",
            "client_id": "client-a",
            "created_at": WHEN,
        }
        tokens.add_refresh_token("refresh-a", **refresh, expires_at=LATER)
        written = _core(c, oidc_refresh_tokens, digest="refresh-a")
        c.execute(insert(oidc_refresh_tokens), {**written, "digest": "refresh-b"})
        assert _differing(c, oidc_refresh_tokens, "digest", "refresh-a", "refresh-b") == {"digest"}
        for key in "ab":
            digest = f"refresh-{key}"
            assert tokens.spend_refresh_token(digest, client_id="client-other", now=WHEN) is None
            assert tokens.spend_refresh_token(digest, client_id="client-a", now=WHEN) == "grant-a"
            assert tokens.spend_refresh_token(digest, client_id="client-a", now=WHEN) is None
            record = tokens.refresh_token(digest)
            assert record is not None
            assert (record.expires_at, record.used_at) == (LATER, WHEN)
        assert oidc.session_activity("session-a", now=WHEN) == activity
