"""Appending to, verifying and exporting the audit chain (docs/audit.md).

Invariant: events join the chain one at a time, in the order their transactions take the
chain head: PostgreSQL holds the head row ``FOR UPDATE`` until the transaction ends, and
SQLite runs one ``BEGIN IMMEDIATE`` transaction at a time. An event's id is taken after
the head, so id order is chain order. Appending costs one read and one update of the head
per transaction, in the transaction that writes the events, as its last statements, so
the head lock is the last lock a transaction takes and is held only until its commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.engine import Connection, Engine, RowMapping

from sekisho.core.audit_chain import GENESIS, AuditSeal, Head, Verdict, instant, verify
from sekisho.store.tables import audit_chain, audit_events

ROW = 1
CREATE_LOCK = 0x5E_C15_A  # serialises the first sealing of the chain on PostgreSQL
BATCH = 1000

# Built once: every write transaction that audits runs these (docs/architecture.md).
_HEAD = select(audit_chain.c.seq, audit_chain.c.hash, audit_chain.c.mac).where(
    audit_chain.c.id == ROW
)
_LOCKED_HEAD = _HEAD.with_for_update()
_MOVE_HEAD = (
    update(audit_chain)
    .where(audit_chain.c.id == ROW)
    .values(seq=bindparam("p_seq"), hash=bindparam("p_hash"), mac=bindparam("p_mac"))
)
_INSERT_EVENT = insert(audit_events)


def append(connection: Connection, seal: AuditSeal, events: Sequence[Mapping[str, Any]]) -> None:
    """Seal ``events`` (stored column values) onto the chain, in order (one statement
    for all of them; rows are inserted, and so get their ids, in list order)."""
    head = _locked_head(connection, seal)
    seq, last = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for values in events:
        seq += 1
        last = seal.seal(values, seq=seq, key_id=seal.key_id, prev=last)
        rows.append({**values, "seq": seq, "key_id": seal.key_id, "hash": last})
    connection.execute(_INSERT_EVENT, rows)
    _move_head(connection, seal, seq, last)


def open_chain(connection: Connection, seal: AuditSeal) -> None:
    """Make sure the chain exists: at the first start after the upgrade that added it,
    seal the events written before it, in id order."""
    _locked_head(connection, seal)


def _locked_head(connection: Connection, seal: AuditSeal) -> Head:
    head = _read_head(connection, lock=True)
    if head is not None:
        return head
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CREATE_LOCK})
        head = _read_head(connection, lock=True)
        if head is not None:
            return head
    seq, last = _seal_backlog(connection, seal)
    connection.execute(
        insert(audit_chain).values(id=ROW, seq=seq, hash=last, mac=seal.head_mac(seq, last))
    )
    return Head(seq=seq, hash=last, mac=seal.head_mac(seq, last))


def _seal_backlog(connection: Connection, seal: AuditSeal) -> tuple[int, str]:
    rows = connection.execute(
        select(audit_events).where(audit_events.c.seq.is_(None)).order_by(audit_events.c.id)
    ).mappings()
    seq, last = 0, GENESIS
    sealed: list[dict[str, Any]] = []
    for row in rows:
        seq += 1
        last = seal.seal(row, seq=seq, key_id=seal.key_id, prev=last)
        sealed.append({"b_id": row["id"], "seq": seq, "key_id": seal.key_id, "hash": last})
    if sealed:
        connection.execute(
            update(audit_events)
            .where(audit_events.c.id == bindparam("b_id"))
            .values(seq=bindparam("seq"), key_id=bindparam("key_id"), hash=bindparam("hash")),
            sealed,
        )
    return seq, last


def _move_head(connection: Connection, seal: AuditSeal, seq: int, last: str) -> None:
    connection.execute(
        _MOVE_HEAD, {"p_seq": seq, "p_hash": last, "p_mac": seal.head_mac(seq, last)}
    )


def _read_head(connection: Connection, *, lock: bool) -> Head | None:
    row = connection.execute(_LOCKED_HEAD if lock else _HEAD).first()
    return None if row is None else Head(seq=int(row.seq), hash=row.hash, mac=row.mac)


def read_head(connection: Connection) -> Head | None:
    return _read_head(connection, lock=False)


def events(connection: Connection, *, since: datetime | None = None) -> Iterator[RowMapping]:
    """Every event in id (chain) order, optionally from ``since`` on, read in batches."""
    statement = select(audit_events).order_by(audit_events.c.id)
    if since is not None:
        statement = statement.where(audit_events.c.at >= since)
    yield from connection.execute(statement.execution_options(yield_per=BATCH)).mappings()


def verify_chain(engine: Engine, seal: AuditSeal) -> Verdict:
    """Check the whole chain in one snapshot (REPEATABLE READ on PostgreSQL, so events
    appended meanwhile neither appear half-way nor move the head under the check)."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            head = read_head(connection)
            return verify(events(connection), head, seal)


def export_lines(engine: Engine, *, since: datetime | None) -> Iterator[str]:
    """The events from ``since`` on as JSON Lines, in chain order, with their place in
    the chain (``seq``, ``key_id``, ``hash``) so a copy can be checked against the log."""
    with engine.connect() as connection, connection.begin():
        for row in events(connection, since=since):
            yield json.dumps(
                {
                    "id": row["id"],
                    "seq": row["seq"],
                    "at": instant(row["at"]),
                    "event": row["event"],
                    "outcome": row["outcome"],
                    "user_id": row["user_id"],
                    "email": row["email"],
                    "session_id": row["session_id"],
                    "flow_id": row["flow_id"],
                    "ip": row["ip"],
                    "user_agent": row["user_agent"],
                    "amr": row["amr"].split(),
                    "aal": row["aal"],
                    "detail": json.loads(row["detail"]),
                    "request_id": row["request_id"],
                    "key_id": row["key_id"],
                    "hash": row["hash"],
                },
                ensure_ascii=False,
                separators=(",", ":"),
            )
