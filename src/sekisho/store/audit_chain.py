"""Appending to, verifying and exporting the audit chains (docs/audit.md).

Invariant: the events of one chain join it one at a time, in the order their
transactions take that chain's head row. A transaction seals all its events onto one
chain, whose head it locks as its last statement before the commit: PostgreSQL takes
the first head of ``CHAINS_POSTGRESQL`` that no other transaction holds
(``FOR UPDATE SKIP LOCKED``), so concurrent writers do not queue on one row; SQLite has
one chain, and its ``BEGIN IMMEDIATE`` transactions run one at a time. An event's id is
drawn after its chain's head is locked, so within a chain id order is chain order. Each
transaction holds at most one head lock, the last lock it takes, until its commit.

On SQLite a process remembers the head its last seal left (:class:`KnownHead`) and seals
the next transaction's events onto it with one compare-and-set ``UPDATE`` of the head
(``WHERE`` its ``seq``, ``hash`` and ``mac`` are still those), then inserts them: two
statements instead of three. Any other writer since (another process, a rolled-back
transaction, a key adoption) makes the ``UPDATE`` match nothing, and the transaction
reads the head as usual. PostgreSQL keeps the read: a compare-and-set there would lock a
head it could then not use, and a transaction must hold at most one.

The heads of every chain exist from the first start (``open_chain``), so ``verify``
knows which chains must be there. Every ``ANCHOR_SECONDS`` a process adds to one of its
transactions an anchor event that records the other chains' heads.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.engine import Connection, Engine, RowMapping

from sekisho.core.audit_chain import (
    ANCHORED,
    GENESIS,
    KEY_ADOPTED,
    REKEYED,
    AuditSeal,
    Head,
    Verdict,
    anchor_detail,
    claims,
    instant,
    verify,
)
from sekisho.store.tables import audit_chain, audit_events

CHAINS_POSTGRESQL = 16  # heads; a writer waits only when all are held at once
CHAINS_SQLITE = 1  # one writer at a time anyway
ANCHOR_SECONDS = 60.0
CREATE_LOCK = 0x5E_C15_A  # serialises the creation of the heads on PostgreSQL
BATCH = 1000

# Built once: every write transaction that audits runs these (docs/architecture.md).
_COLUMNS = (audit_chain.c.id, audit_chain.c.seq, audit_chain.c.hash, audit_chain.c.mac)
_HEADS = select(*_COLUMNS).order_by(audit_chain.c.id)
_LOCKED_HEAD = select(*_COLUMNS).where(audit_chain.c.id == bindparam("p_chain")).with_for_update()
_FREE_HEAD = (
    select(*_COLUMNS)
    .where(audit_chain.c.id < bindparam("p_chains"))
    .order_by(audit_chain.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
)
_MOVE_HEAD = (
    update(audit_chain)
    .where(audit_chain.c.id == bindparam("p_chain"))
    .values(seq=bindparam("p_seq"), hash=bindparam("p_hash"), mac=bindparam("p_mac"))
)
_ADVANCE_HEAD = (
    update(audit_chain)
    .where(
        audit_chain.c.id == bindparam("p_chain"),
        audit_chain.c.seq == bindparam("p_was_seq"),
        audit_chain.c.hash == bindparam("p_was_hash"),
        audit_chain.c.mac == bindparam("p_was_mac"),
    )
    .values(seq=bindparam("p_seq"), hash=bindparam("p_hash"), mac=bindparam("p_mac"))
)
_INSERT_EVENT = insert(audit_events)


class Anchors:
    """When a process next anchors: at most once per ``every`` seconds, the first time
    ``every`` seconds after it started (a short-lived CLI process never does)."""

    def __init__(self, every: float = ANCHOR_SECONDS) -> None:
        self._every = every
        self._next = time.monotonic() + every
        self._lock = threading.Lock()

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        with self._lock:
            if now < self._next:
                return False
            self._next = now + self._every
            return True


class KnownHead:
    """The head this process's last seal left on SQLite's one chain: a guess, checked by
    the compare-and-set that uses it (its transaction may have rolled back since)."""

    def __init__(self) -> None:
        self.head: Head | None = None


def chain_count(connection: Connection) -> int:
    return CHAINS_POSTGRESQL if connection.dialect.name == "postgresql" else CHAINS_SQLITE


def append(
    connection: Connection,
    seal: AuditSeal,
    events: Sequence[Mapping[str, Any]],
    anchors: Anchors | None = None,
    known: KnownHead | None = None,
) -> None:
    """Seal ``events`` (stored column values) onto one chain, in order (one statement
    for all of them; rows are inserted, and so get their ids, in list order), with an
    anchor event after them when ``anchors`` says one is due; on SQLite onto ``known``'s
    head when it is still the chain's."""
    chains = chain_count(connection)
    if known is not None and chains == 1 and known.head is not None:
        known.head = _advance(connection, seal, known.head, events)
        if known.head is not None:
            return
    head = _take_head(connection, seal)
    if anchors is not None and chains > 1 and anchors.due():
        events = [*events, _anchor(connection, head.chain)]
    moved = _seal_onto(connection, seal, head, events)
    if known is not None and chains == 1:
        known.head = moved


def _advance(
    connection: Connection,
    seal: AuditSeal,
    was: Head,
    events: Sequence[Mapping[str, Any]],
) -> Head | None:
    """Move the head from ``was`` past ``events`` if it is still ``was`` (the UPDATE
    takes SQLite's write lock before the events' ids are drawn), then insert them; the
    head they left, or ``None`` when the chain had moved on."""
    rows, moved = _sealed(seal, was, events)
    advanced = connection.execute(
        _ADVANCE_HEAD,
        {
            "p_chain": was.chain,
            "p_was_seq": was.seq,
            "p_was_hash": was.hash,
            "p_was_mac": was.mac,
            "p_seq": moved.seq,
            "p_hash": moved.hash,
            "p_mac": moved.mac,
        },
    )
    if advanced.rowcount != 1:
        return None
    connection.execute(_INSERT_EVENT, rows)
    return moved


def adopt(connection: Connection, seal: AuditSeal, events: Sequence[Mapping[str, Any]]) -> None:
    """Open the new key's segment in every chain (``sekisho key adopt``): ``events`` in
    chain 0, an ``audit.chain_rekeyed`` event in each other chain that holds events, and
    the seal's MAC on the empty chains' heads. Heads are locked in chain order."""
    _ensure_heads(connection, seal)
    for chain in range(chain_count(connection)):
        head = _read_head(connection, chain)
        if head is None:
            continue
        if chain == 0:
            _seal_onto(connection, seal, head, events)
        elif head.seq == 0:
            _move_head(connection, seal, chain, 0, GENESIS)
        else:
            _seal_onto(connection, seal, head, [_system_event(REKEYED, {"by": KEY_ADOPTED})])


def open_chain(connection: Connection, seal: AuditSeal) -> None:
    """Make sure every chain's head exists: at the first start after the upgrade that
    added the chain, seal the events written before it, in id order, onto chain 0."""
    _ensure_heads(connection, seal)


def _sealed(
    seal: AuditSeal, head: Head, events: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], Head]:
    """The rows of ``events`` sealed after ``head``, and the head they leave."""
    chain, seq, last = head.chain, head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for values in events:
        seq += 1
        last = seal.seal(values, seq=seq, key_id=seal.key_id, prev=last, chain=chain)
        rows.append({**values, "chain": chain, "seq": seq, "key_id": seal.key_id, "hash": last})
    return rows, Head(seq=seq, hash=last, mac=seal.head_mac(seq, last, chain), chain=chain)


def _seal_onto(
    connection: Connection, seal: AuditSeal, head: Head, events: Sequence[Mapping[str, Any]]
) -> Head:
    rows, moved = _sealed(seal, head, events)
    connection.execute(_INSERT_EVENT, rows)
    _set_head(connection, moved)
    return moved


def _take_head(connection: Connection, seal: AuditSeal) -> Head:
    """Lock a chain's head: on PostgreSQL the first one no other transaction holds; when
    all are held (or none exists yet), wait for one picked by thread."""
    chains = chain_count(connection)
    if chains > 1:
        row = connection.execute(_FREE_HEAD, {"p_chains": chains}).first()
        if row is not None:
            return _head(row)
    chain = random.randrange(chains)  # spreads the waiters; no secret
    head = _read_head(connection, chain)
    if head is not None:
        return head
    _ensure_heads(connection, seal)
    head = _read_head(connection, chain)
    if head is None:
        raise RuntimeError(f"the head of audit chain {chain} could not be created")
    return head


def _ensure_heads(connection: Connection, seal: AuditSeal) -> None:
    chains = chain_count(connection)
    present = set(connection.execute(select(audit_chain.c.id)).scalars())
    if present >= set(range(chains)):
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CREATE_LOCK})
        present = set(connection.execute(select(audit_chain.c.id)).scalars())
    for chain in sorted(set(range(chains)) - present):
        seq, last = _seal_backlog(connection, seal) if chain == 0 else (0, GENESIS)
        connection.execute(
            insert(audit_chain).values(
                id=chain, seq=seq, hash=last, mac=seal.head_mac(seq, last, chain)
            )
        )


def _seal_backlog(connection: Connection, seal: AuditSeal) -> tuple[int, str]:
    """Events written before the chain existed (no ``seq``) join chain 0."""
    rows = connection.execute(
        select(audit_events).where(audit_events.c.seq.is_(None)).order_by(audit_events.c.id)
    ).mappings()
    seq, last = 0, GENESIS
    sealed: list[dict[str, Any]] = []
    for row in rows:
        seq += 1
        last = seal.seal(row, seq=seq, key_id=seal.key_id, prev=last)
        sealed.append(
            {"b_id": row["id"], "chain": 0, "seq": seq, "key_id": seal.key_id, "hash": last}
        )
    if sealed:
        connection.execute(
            update(audit_events)
            .where(audit_events.c.id == bindparam("b_id"))
            .values(
                chain=bindparam("chain"),
                seq=bindparam("seq"),
                key_id=bindparam("key_id"),
                hash=bindparam("hash"),
            ),
            sealed,
        )
    return seq, last


def _anchor(connection: Connection, chain: int) -> dict[str, Any]:
    """An anchor event: the other chains' heads as last committed (read without a lock;
    an anchor needs a state each chain really had, not the newest)."""
    heads = [head for head in _all_heads(connection) if head.chain != chain]
    return _system_event(ANCHORED, anchor_detail(heads))


def _system_event(event: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    """The stored values of an event the chain itself writes."""
    return {
        "at": datetime.now(UTC),
        "event": event,
        "outcome": "success",
        "user_id": None,
        "email": None,
        "session_id": None,
        "flow_id": None,
        "ip": None,
        "user_agent": None,
        "amr": "",
        "aal": None,
        "detail": json.dumps(detail, sort_keys=True),
        "request_id": None,
    }


def _move_head(connection: Connection, seal: AuditSeal, chain: int, seq: int, last: str) -> None:
    _set_head(
        connection, Head(seq=seq, hash=last, mac=seal.head_mac(seq, last, chain), chain=chain)
    )


def _set_head(connection: Connection, head: Head) -> None:
    connection.execute(
        _MOVE_HEAD,
        {"p_chain": head.chain, "p_seq": head.seq, "p_hash": head.hash, "p_mac": head.mac},
    )


def _head(row: Any) -> Head:
    return Head(seq=int(row.seq), hash=row.hash, mac=row.mac, chain=int(row.id))


def _read_head(connection: Connection, chain: int) -> Head | None:
    row = connection.execute(_LOCKED_HEAD, {"p_chain": chain}).first()
    return None if row is None else _head(row)


def _all_heads(connection: Connection) -> list[Head]:
    return [_head(row) for row in connection.execute(_HEADS)]


def read_heads(connection: Connection) -> dict[int, Head]:
    return {head.chain: head for head in _all_heads(connection)}


def events(connection: Connection, *, since: datetime | None = None) -> Iterator[RowMapping]:
    """Every event in id order (within a chain, chain order), optionally from ``since``
    on, read in batches."""
    statement = select(audit_events).order_by(audit_events.c.id)
    if since is not None:
        statement = statement.where(audit_events.c.at >= since)
    yield from connection.execute(statement.execution_options(yield_per=BATCH)).mappings()


def _by_chain(connection: Connection) -> Iterator[RowMapping]:
    """Every event ordered by chain (rows outside any chain first), then id."""
    statement = select(audit_events).order_by(
        audit_events.c.chain.asc().nulls_first(), audit_events.c.id
    )
    yield from connection.execute(statement.execution_options(yield_per=BATCH)).mappings()


def verify_chain(engine: Engine, seal: AuditSeal) -> Verdict:
    """Check every chain in one snapshot (REPEATABLE READ on PostgreSQL, so events
    appended meanwhile neither appear half-way nor move a head under the check)."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            heads = read_heads(connection)
            anchors = connection.execute(
                select(audit_events.c.id, audit_events.c.detail).where(
                    audit_events.c.event == ANCHORED, audit_events.c.chain.is_not(None)
                )
            ).mappings()
            return verify(
                _by_chain(connection),
                heads,
                seal,
                chains=chain_count(connection),
                anchored=claims(anchors),
            )


def export_lines(engine: Engine, *, since: datetime | None) -> Iterator[str]:
    """The events from ``since`` on as JSON Lines, in id order, with their place in
    their chain (``chain``, ``seq``, ``key_id``, ``hash``) so a copy can be checked
    against the log."""
    with engine.connect() as connection, connection.begin():
        for row in events(connection, since=since):
            yield json.dumps(
                {
                    "id": row["id"],
                    "chain": row["chain"],
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
