"""What a process checks before it serves or delivers anything (SECURITY.md case 56).

Invariant: every process that reads sealed mail or keyed hashes runs with the secret key
the deployment was set up with. The first process to start records a keyed fingerprint
of its key (``Keyring.fingerprint``) in the one-row ``deployment_key`` table; a process
whose fingerprint differs refuses to start, so it can neither fail other instances' mail
nor reject their sessions, links and codes. Only ``sekisho key adopt`` replaces the
recorded fingerprint.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from pathlib import Path

from cryptography.fernet import InvalidToken
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError

from sekisho.core.audit_chain import KEY_REFUSED, AuditSeal
from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent
from sekisho.store import audit_chain
from sekisho.store.migrate import schema_state, upgrade
from sekisho.store.repositories import SqlAudit
from sekisho.store.tables import deployment_key, outbox

ROW = 1
SHOWN = 12  # fingerprint characters shown to the operator


class NotReady(Exception):
    """This process must not start; ``str(error)`` is one line for the operator."""


def location(database_url: str) -> str:
    """The database URL as it may be shown: without its password."""
    return make_url(database_url).render_as_string(hide_password=True)


def require_existing_file(database_url: str) -> None:
    """A SQLite file must exist before a command other than ``db upgrade`` or ``serve``
    opens it; opening it would create an empty one."""
    parsed = make_url(database_url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    if not Path(str(parsed.database)).exists():
        raise NotReady(
            f"there is no database at {parsed.database}: create it with `sekisho db upgrade`"
        )


def require_current_schema(engine: Engine, database_url: str) -> None:
    """The database holds exactly the migrations this version of Sekisho ships."""
    where = location(database_url)
    try:
        state = schema_state(engine)
    except OperationalError as error:
        raise unreachable(database_url, error) from error
    if state.newer:
        raise _newer(where, state.current)
    if state.empty:
        raise NotReady(
            f"the database at {where} has no Sekisho tables yet: "
            "create them with `sekisho db upgrade`"
        )
    if not state.up_to_date:
        raise NotReady(
            f"the database at {where} is at revision {', '.join(sorted(state.current))}, "
            f"this version needs {', '.join(sorted(state.shipped_heads))}: "
            "run `sekisho db upgrade`"
        )


def _newer(where: str, current: frozenset[str]) -> NotReady:
    return NotReady(
        f"the database at {where} was migrated by a newer version of Sekisho "
        f"({', '.join(sorted(current))}): run that version"
    )


def unreachable(database_url: str, error: OperationalError) -> NotReady:
    reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
    return NotReady(f"cannot open the database at {location(database_url)}: {reason}")


def prepare(
    engine: Engine,
    database_url: str,
    keys: Keyring,
    *,
    migrate: bool,
    process: str,
    now: datetime,
) -> None:
    """Run at every start: migrate (or require a current schema), then check the key."""
    try:
        if migrate:
            state = schema_state(engine)
            if state.newer:
                raise _newer(location(database_url), state.current)
            upgrade(engine)
        else:
            require_existing_file(database_url)
            require_current_schema(engine, database_url)
        check_key(engine, keys, process=process, now=now)
    except OperationalError as error:
        raise unreachable(database_url, error) from error


def check_key(engine: Engine, keys: Keyring, *, process: str, now: datetime) -> None:
    """Record this key's fingerprint when none is recorded; refuse to go on (``NotReady``,
    audited as ``deployment.key_refused``) when another one is."""
    mine = keys.fingerprint()
    with engine.begin() as connection:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        recorded = (
            connection.execute(
                dialect.insert(deployment_key)
                .values(id=ROW, fingerprint=mine, recorded_at=now)
                .on_conflict_do_nothing(index_elements=[deployment_key.c.id])
                .returning(deployment_key.c.id)
            ).first()
            is not None
        )
        stored = connection.execute(
            select(deployment_key.c.fingerprint).where(deployment_key.c.id == ROW)
        ).scalar_one()
        matches = hmac.compare_digest(stored, mine)
        seal = AuditSeal(keys)
        audit = SqlAudit(connection, seal)
        event = AuditEvent(
            event="deployment.key_recorded" if recorded else KEY_REFUSED,
            outcome="success" if recorded else "failure",
            at=now,
            detail={"process": process, "fingerprint": mine[:SHOWN]},
        )
        if not matches:
            audit.record_outside_chain(event)
        else:
            audit_chain.open_chain(connection, seal)
            if recorded:
                audit.append(event)
            audit.flush()
    if not matches:
        raise NotReady(
            f"SEKISHO_SECRET_KEY is not the key this database was set up with "
            f"(fingerprint {mine[:SHOWN]}, the database expects {stored[:SHOWN]}): "
            "give every process the same key, or after a deliberate change of key "
            "run `sekisho key adopt` with the new one"
        )


def adopt_key(engine: Engine, keys: Keyring, *, now: datetime) -> int:
    """Make this key the deployment's, and drop the pending mail sealed under another key
    (its links and codes cannot be checked under this key anyway). Returns how many
    messages were dropped; each is audited as ``mail.dropped`` (``key_changed``)."""
    mine = keys.fingerprint()
    with engine.begin() as connection:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(deployment_key).values(id=ROW, fingerprint=mine, recorded_at=now)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[deployment_key.c.id],
                set_={"fingerprint": mine, "recorded_at": now},
            )
        )
        seal = AuditSeal(keys)
        audit, drops = SqlAudit(connection, seal), SqlAudit(connection, seal)
        dropped = _drop_sealed_under_other_keys(drops, connection, keys, now=now)
        audit.append(
            AuditEvent(
                event="deployment.key_adopted",
                outcome="success",
                at=now,
                ip="cli",
                detail={"fingerprint": mine[:SHOWN], "dropped": dropped, "by": "operator"},
            )
        )
        audit.flush_adoption()  # the new key's first event, then what it dropped
        drops.flush()
    return dropped


def _drop_sealed_under_other_keys(
    audit: SqlAudit, connection: Connection, keys: Keyring, *, now: datetime
) -> int:
    pending = connection.execute(
        select(outbox.c.id, outbox.c.kind, outbox.c.sealed_payload, outbox.c.attempts).where(
            outbox.c.status == "pending"
        )
    ).all()
    dropped = 0
    for message_id, kind, sealed, attempts in pending:
        try:
            keys.unseal(sealed or "")
        except InvalidToken:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == message_id, outbox.c.status == "pending")
                .values(
                    status="dropped",
                    finished_at=now,
                    locked_until=None,
                    sealed_payload=None,
                    last_error="sealed under another secret key",
                )
            )
            audit.append(
                AuditEvent(
                    event="mail.dropped",
                    outcome="success",
                    at=now,
                    detail={"kind": kind, "reason": "key_changed", "attempts": attempts},
                )
            )
            dropped += 1
    return dropped
