"""CPU of the sign-in and provider paths' repository calls, in process: the statements
each path runs (with the audit events it seals), each in its own transaction as the
services open them, timed with ``time.thread_time`` per round (no HTTP, no WebAuthn,
no crypto; on PostgreSQL the server's own CPU is not in the figure).

    .venv/bin/python -m benchmarks.store_calls [--backend postgresql] [--rounds 2000]

Prints the median CPU microseconds of one round, per path. For a before/after in one
run, run it twice with ``PYTHONPATH`` naming the other ``src`` (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import insert
from tests.support.records import email_flow, oidc_client_row, passkey, passkey_session

from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent, FlowState
from sekisho.oidc.records import Grant
from sekisho.policy.confirmations import Confirmation
from sekisho.store.confirmations import SqlConfirmations
from sekisho.store.database import Database, make_engine
from sekisho.store.migrate import upgrade
from sekisho.store.oidc import SqlOidc
from sekisho.store.oidc_tokens import SqlOidcTokens
from sekisho.store.repositories import SqlRepositories
from sekisho.store.tables import oidc_clients

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLIENT = "bench-client"


def _audit(repos: SqlRepositories, event: str, user_id: str | None, now: datetime) -> None:
    repos.audit.append(
        AuditEvent(
            event=event,
            outcome="success",
            at=now,
            ip="192.0.2.1",
            user_agent="bench",
            user_id=user_id,
            email="bench@example.com",
            amr=("hwk", "user"),
            aal=2,
            detail={"method": "bench"},
        )
    )


def _passkey_round(database: Database, user_id: str, credential: bytes, round_: int) -> None:
    now = datetime.now(UTC)
    with database.reading() as repos:
        repos.users.by_id(user_id)
    with database.transaction() as repos:
        found = repos.passkeys.by_credential_id(credential)
        assert found is not None
        repos.users.by_id(found.user_id)
        repos.passkeys.record_use(found.id, sign_count=round_, backup_state=False, now=now)
        repos.users.mark_signed_in(user_id, now=now, email_proven=False, locale="en")
        repos.devices.known(user_id, "device-" + user_id, now=now)
        repos.sessions.create(passkey_session(user_id, now), token_digest=uuid.uuid4().hex)
        _audit(repos, "signin.succeeded", user_id, now)


def _code_round(database: Database, email: str, round_: int) -> None:
    now = datetime.now(UTC)
    flow_id = uuid.uuid4().hex
    with database.transaction() as repos:
        repos.locks.hold(f"email:{email}")
        repos.users.by_email(email)
        repos.flows.supersede_pending(email, "email_signin", now=now)
        repos.flows.create(email_flow(flow_id, email, now))
        repos.secrets.add(
            flow_id=flow_id,
            purpose="signin",
            kind="code",
            digest="code-" + flow_id,
            max_attempts=5,
            expires_at=now + timedelta(minutes=10),
        )
        repos.outbox.enqueue(kind="signin_code", sealed_payload="x" * 200, now=now)
        _audit(repos, "signin.requested", None, now)
    with database.transaction() as repos:
        flow = repos.flows.get(flow_id)
        assert flow is not None
        repos.locks.hold(f"email:{email}")
        repos.failures.get(email, "email_code")
        attempt = repos.secrets.take_code_attempt(flow_id=flow_id, purpose="signin", now=now)
        assert attempt is not None
        repos.secrets.consume(attempt.secret_id, reason="used", now=now)
        repos.flows.transition(
            flow_id, from_state=FlowState.PENDING, to_state=FlowState.APPROVED, now=now
        )
        user = repos.users.by_email(email)
        assert user is not None
        repos.users.mark_signed_in(user.id, now=now, email_proven=True, locale="en")
        repos.secrets.spend_flow(flow_id, reason=FlowState.COMPLETED, now=now)
        repos.failures.reset(email, "email_code")
        repos.sessions.create(passkey_session(user.id, now), token_digest=uuid.uuid4().hex)
        _audit(repos, "signin.succeeded", user.id, now)


def _session_round(database: Database, token_digest: str, round_: int) -> None:
    """A signed-in request whose session's idle clock is moved on."""
    with database.transaction() as repos:
        session = repos.sessions.by_token(token_digest)
        assert session is not None
        repos.sessions.touch(session.id, now=datetime.now(UTC))


def _wrong_code_round(database: Database, email: str, round_: int) -> None:
    now = datetime.now(UTC)
    with database.transaction() as repos:
        repos.failures.record_failure(email, "email_code", now=now)
        _audit(repos, "signin.failed", None, now)


def _register_round(database: Database, user_id: str, round_: int) -> None:
    now = datetime.now(UTC)
    with database.transaction() as repos:
        assert repos.passkeys.add(passkey(uuid.uuid4().hex, user_id, now))
        _audit(repos, "passkey.added", user_id, now)


def _confirmation_round(database: Database, user_id: str, round_: int) -> None:
    """A step-up confirmation: asked, read, confirmed by a passkey, redeemed."""
    now = datetime.now(UTC)
    asked = Confirmation(
        id=uuid.uuid4().hex,
        client_id=CLIENT,
        user_id=user_id,
        session_id="s" * 22,
        action="payment",
        details={"amount": 100},
        details_hash="h" * 64,
        return_uri="https://rp.example/cb",
        created_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    with database.transaction() as repos:
        SqlConfirmations(repos.connection).add(asked, canonical_details='{"amount":100}')
        _audit(repos, "confirmation.requested", user_id, now)
    with database.transaction() as repos:
        confirmations = SqlConfirmations(repos.connection)
        assert confirmations.get(asked.id) is not None
        assert confirmations.confirm(
            asked.id,
            now=now,
            expires_at=now + timedelta(minutes=5),
            passkey_id="p",
            acr="phr",
            amr=("hwk", "user"),
            token=asked.id,
        )
        _audit(repos, "confirmation.confirmed", user_id, now)
    with database.transaction() as repos:
        assert SqlConfirmations(repos.connection).redeem(asked.id, client_id=CLIENT, now=now)
        _audit(repos, "confirmation.redeemed", user_id, now)


def _oidc_round(database: Database, user_id: str, session_id: str, round_: int) -> None:
    """An authorization, its code exchange, one refresh and one userinfo read."""
    now = datetime.now(UTC)
    grant_id, code, refresh = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    with database.transaction() as repos:
        oidc = SqlOidc(repos.connection)
        assert oidc.client(CLIENT) is not None
        oidc.add_grant(
            Grant(
                id=grant_id,
                client_id=CLIENT,
                user_id=user_id,
                session_id=session_id,
                scope=("openid", "email"),
                nonce="n",
                auth_time=now,
                amr=("hwk", "user"),
                acr="phr",
                created_at=now,
            )
        )
        oidc.add_code(
            code,
            grant_id=grant_id,
            client_id=CLIENT,
            redirect_uri="https://rp.example/cb",
            code_challenge="c" * 43,
            expires_at=now + timedelta(minutes=1),
        )
        _audit(repos, "oidc.code_issued", user_id, now)
    later = now + timedelta(days=30)
    with database.transaction() as repos:
        oidc, tokens = SqlOidc(repos.connection), SqlOidcTokens(repos.connection)
        assert oidc.client(CLIENT) is not None
        assert oidc.redeem_code(code, now=now) is not None
        assert oidc.grant_and_session(grant_id, now=now) is not None
        oidc.add_access_token("a" + code, grant_id=grant_id, expires_at=later)
        tokens.add_refresh_token(
            refresh, grant_id=grant_id, client_id=CLIENT, created_at=now, expires_at=later
        )
        _audit(repos, "oidc.token_issued", user_id, now)
    with database.transaction() as repos:
        oidc, tokens = SqlOidc(repos.connection), SqlOidcTokens(repos.connection)
        assert oidc.client(CLIENT) is not None
        assert tokens.spend_refresh_token(refresh, client_id=CLIENT, now=now) == grant_id
        assert oidc.grant_and_session(grant_id, now=now) is not None
        oidc.add_access_token("r" + code, grant_id=grant_id, expires_at=later)
        tokens.add_refresh_token(
            "r" + refresh, grant_id=grant_id, client_id=CLIENT, created_at=now, expires_at=later
        )
        _audit(repos, "oidc.token_refreshed", user_id, now)
    with database.reading() as repos:
        found = SqlOidc(repos.connection).grant_and_session_of_access_token("r" + code, now=now)
        assert found is not None


def _seed(database: Database) -> tuple[str, str, bytes, str, str]:
    """The user, their address, passkey credential, a session's token digest and id."""
    now = datetime.now(UTC)
    with database.transaction() as repos:
        user = repos.users.create("bench@example.com", now=now, verified=True)
        registered = passkey(uuid.uuid4().hex, user.id, now)
        repos.passkeys.add(registered)
        repos.devices.add(user.id, "device-" + user.id, now=now)
        session, digest = passkey_session(user.id, now), uuid.uuid4().hex
        repos.sessions.create(session, token_digest=digest)
        repos.connection.execute(insert(oidc_clients), oidc_client_row(CLIENT, now))
    return user.id, user.email, registered.credential_id, digest, session.id


def _median(run: Callable[[int], None], rounds: int) -> float:
    """The median CPU microseconds of one round (this thread's: SQLite works in it)."""
    times = []
    for round_ in range(rounds):
        start = time.thread_time()
        run(round_)
        times.append(time.thread_time() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=2000)
    options = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="sekisho-store-calls-")
    name = f"sekisho_bench_{uuid.uuid4().hex[:12]}"
    if options.backend == "sqlite":
        url = f"sqlite:///{folder}/bench.db"
    else:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        database = Database(engine, Keyring("bench-store-calls"))
        user_id, email, credential, token_digest, session_id = _seed(database)
        paths: dict[str, Callable[[int], None]] = {
            "passkey": lambda r: _passkey_round(database, user_id, credential, r),
            "code": lambda r: _code_round(database, email, r),
            "session": lambda r: _session_round(database, token_digest, r),
            "wrong-code": lambda r: _wrong_code_round(database, email, r),
            "register": lambda r: _register_round(database, user_id, r),
            "confirmation": lambda r: _confirmation_round(database, user_id, r),
            "oidc": lambda r: _oidc_round(database, user_id, session_id, r),
        }
        figures = [f"{name} {_median(run, options.rounds):.0f}" for name, run in paths.items()]
        print(
            f"{options.backend}: median CPU us per round of {options.rounds}: " + ", ".join(figures)
        )
    finally:
        engine.dispose()
        if options.backend == "postgresql":
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
