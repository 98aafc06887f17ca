"""Appending to, verifying and exporting the audit chains (docs/audit.md).

Invariant: the events of one chain join it one at a time, in the order their
transactions take that chain's head row. A transaction seals all its events onto one
chain, whose head it locks as its last statement before the commit: PostgreSQL takes
the first head of ``CHAINS_POSTGRESQL`` that no other transaction holds
(``FOR UPDATE SKIP LOCKED``), so concurrent writers do not queue on one row; SQLite has
one chain, and its ``BEGIN IMMEDIATE`` transactions run one at a time. An event's id is
drawn after its chain's head is locked, so within a chain id order is chain order. Each
transaction holds at most one head lock, the last lock it takes, until its commit.

A process remembers the heads its committed seals left (:class:`KnownHeads`) and seals a
transaction's events onto one of them without reading it first. On PostgreSQL each
process starts from a chain of its own (:func:`claim_start`: the first of a spread order
that no other process of the deployment holds), and its transactions fill the chains
from there on, so processes rarely seal onto a chain another one remembers. SQLite moves it with
one compare-and-set ``UPDATE`` of the head (``WHERE`` its ``seq``, ``hash`` and ``mac``
are still those), then inserts the events: two statements instead of three. PostgreSQL
does both in one statement (:data:`_SEAL`): a CTE locks the head only if it is still the
remembered one and no other transaction holds it (``FOR UPDATE SKIP LOCKED``, so it
never waits), moves it, and the ``INSERT`` draws the events' ids after that. A head that
another writer moved or holds makes the statement insert nothing, and the transaction
takes a head as above, preferring that chain first: a row that was moved after the
statement's snapshot is left locked by it, and so the transaction still holds one head
only. A head is given back to the process's set after its transaction commits, so two
transactions of one process never try the same one; a chain one of them uses (the head
it took, or the one it read) is the last a read of another prefers until then.

The heads of every chain exist from the first start (``open_chain``), so ``verify``
knows which chains must be there. Every ``ANCHOR_SECONDS`` a process adds to one of its
transactions an anchor event that records the other chains' heads.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, any_, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine, RowMapping

from sekisho.core.audit_chain import (
    ANCHORED,
    GENESIS,
    KEY_ADOPTED,
    REKEYED,
    SEALED_FIELDS,
    AuditSeal,
    Head,
    Verdict,
    anchor_detail,
    claims,
    instant,
    verify,
)
from sekisho.store.prepared import Prepared
from sekisho.store.tables import audit_chain, audit_events

CHAINS_POSTGRESQL = 16  # heads; a writer waits only when all are held at once
CHAINS_SQLITE = 1  # one writer at a time anyway
ANCHOR_SECONDS = 60.0
CREATE_LOCK = 0x5E_C15_A  # serialises the creation of the heads on PostgreSQL
START_LOCK = 0x5E_C15_B  # with a slot: a process's claim of its starting chain
#: The starting chains in the order processes claim them (0..15 bit-reversed): each new
#: process starts halfway between two taken ones, so N processes start 16/N apart.
SPREAD = tuple(int(f"{n:04b}"[::-1], 2) for n in range(CHAINS_POSTGRESQL))
BATCH = 1000

# Built once, and prepared (``store/prepared.py``): every write transaction that audits
# runs these (docs/architecture.md).
_COLUMNS = (audit_chain.c.id, audit_chain.c.seq, audit_chain.c.hash, audit_chain.c.mac)
_HEADS = select(*_COLUMNS).order_by(audit_chain.c.id)
_LOCKED_HEAD = Prepared(
    select(*_COLUMNS).where(audit_chain.c.id == bindparam("p_chain")).with_for_update()
)
_FREE_HEAD = Prepared(
    select(*_COLUMNS)
    .where(audit_chain.c.id < bindparam("p_chains"))
    .order_by(
        (audit_chain.c.id == bindparam("p_prefer")).desc(),
        (audit_chain.c.id == any_(bindparam("p_avoid", type_=ARRAY(Integer)))).asc(),
        (audit_chain.c.id + bindparam("p_offset")) % bindparam("p_chains"),
    )
    .limit(1)
    .with_for_update(skip_locked=True)
)
_MOVE_HEAD = Prepared(
    update(audit_chain)
    .where(audit_chain.c.id == bindparam("p_chain"))
    .values(seq=bindparam("p_seq"), hash=bindparam("p_hash"), mac=bindparam("p_mac"))
)
# A compare-and-set: it moves the head only from ``p_was_*`` (its row count says whether).
_ADVANCE_HEAD = Prepared(
    update(audit_chain)
    .where(
        audit_chain.c.id == bindparam("p_chain"),
        audit_chain.c.seq == bindparam("p_was_seq"),
        audit_chain.c.hash == bindparam("p_was_hash"),
        audit_chain.c.mac == bindparam("p_was_mac"),
    )
    .values(seq=bindparam("p_seq"), hash=bindparam("p_hash"), mac=bindparam("p_mac"))
)
# PostgreSQL: the head moved and the events inserted in one statement, only if the head
# is still ``p_was_*`` and no other transaction holds it. The events come as one array
# per column (any number of events, one statement text); ids are drawn in their order,
# after the head's lock, since the INSERT's rows need the moved head.
_EVENT_COLUMNS = (*SEALED_FIELDS, "seq", "key_id", "hash")
_SEAL = Prepared(
    text(
        """
    WITH head AS (
        SELECT id FROM audit_chain
        WHERE id = :p_chain AND seq = :p_was_seq AND hash = :p_was_hash AND mac = :p_was_mac
        FOR UPDATE SKIP LOCKED
    ), moved AS (
        UPDATE audit_chain SET seq = :p_seq, hash = :p_hash, mac = :p_mac
        FROM head WHERE audit_chain.id = head.id
        RETURNING audit_chain.id
    )
    INSERT INTO audit_events (at, event, outcome, user_id, email, session_id, flow_id, ip,
        user_agent, amr, aal, detail, request_id, seq, key_id, hash, chain)
    SELECT e.at, e.event, e.outcome, e.user_id, e.email, e.session_id, e.flow_id, e.ip,
        e.user_agent, e.amr, e.aal, e.detail, e.request_id, e.seq, e.key_id, e.hash, moved.id
    FROM moved, unnest(
        CAST(:e_at AS timestamptz[]), CAST(:e_event AS varchar[]),
        CAST(:e_outcome AS varchar[]), CAST(:e_user_id AS varchar[]),
        CAST(:e_email AS varchar[]), CAST(:e_session_id AS varchar[]),
        CAST(:e_flow_id AS varchar[]), CAST(:e_ip AS varchar[]),
        CAST(:e_user_agent AS varchar[]), CAST(:e_amr AS varchar[]),
        CAST(:e_aal AS integer[]), CAST(:e_detail AS text[]),
        CAST(:e_request_id AS varchar[]), CAST(:e_seq AS bigint[]),
        CAST(:e_key_id AS varchar[]), CAST(:e_hash AS varchar[])
    ) WITH ORDINALITY AS e(at, event, outcome, user_id, email, session_id, flow_id, ip,
        user_agent, amr, aal, detail, request_id, seq, key_id, hash, n)
    ORDER BY e.n
    """
    )
)
_INSERT_EVENT = Prepared(insert(audit_events), keys=(*_EVENT_COLUMNS, "chain"))


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


class KnownHeads:
    """The heads this process's committed seals left, by chain, that none of its
    transactions is using: guesses, each checked by the compare-and-set that uses it
    (another writer may have moved the head since). A transaction leases the set
    (:meth:`lease`); the chain it seals onto is *busy* from its take or read until the
    lease ends, and the head its seal left goes back after its commit, unless a newer
    one of that chain is already there. On PostgreSQL a process prefers the chains from
    its starting chain on (``start``, asked once, when first needed), for the heads it
    knows and for those it reads; a read prefers a chain it reserved (:meth:`reserve`)
    and puts the chains the process knows or uses last.

    ``seals``, ``misses`` and ``reads`` count the seals, the compare-and-sets that found
    the head moved or held, and the seals that read a head (nothing known, or a miss)."""

    def __init__(self, start: Callable[[], int] | None = None) -> None:
        self._start = start
        self._offset: int | None = None if start is not None else 0
        self._starting = threading.Lock()
        self._free: dict[int, Head] = {}
        self._busy: set[int] = set()
        self._lock = threading.Lock()
        self.seals = 0
        self.misses = 0
        self.reads = 0

    @property
    def offset(self) -> int:
        """What ranks the chains: ``(chain + offset) % 16``, the starting chain first."""
        if self._offset is None:
            with self._starting:
                if self._offset is None and self._start is not None:
                    self._offset = -self._start() % CHAINS_POSTGRESQL
        return self._offset or 0

    def lease(self) -> KnownHead:
        """A transaction's use of the set."""
        return KnownHead(self)

    def take(self) -> Head | None:
        offset = self.offset
        with self._lock:
            self.seals += 1
            if not self._free:
                return None
            chain = min(self._free, key=lambda chain: (chain + offset) % CHAINS_POSTGRESQL)
            self._busy.add(chain)
            return self._free.pop(chain)

    def avoided(self) -> list[int]:
        """The chains a read should take last: those this process knows or uses."""
        with self._lock:
            return sorted(self._free.keys() | self._busy)

    def reserve(self) -> tuple[int, list[int]]:
        """For a read: the first chain from the starting one that this process neither
        knows nor uses, marked busy at once (so another of its transactions does not
        read it meanwhile), and the chains the read should take last."""
        offset = self.offset
        with self._lock:
            used = self._free.keys() | self._busy
            chain = next(
                (
                    (c - offset) % CHAINS_POSTGRESQL
                    for c in range(CHAINS_POSTGRESQL)
                    if (c - offset) % CHAINS_POSTGRESQL not in used
                ),
                -1,  # it knows or uses every chain: no preference
            )
            if chain >= 0:
                self._busy.add(chain)
            return chain, sorted(used)

    def use(self, was: int | None, chain: int, *, missed: bool) -> None:
        """A transaction that used ``was`` now seals onto ``chain`` (which it read, and
        holds): a head of it given back since the read began is no longer the newest."""
        with self._lock:
            self.misses += missed
            self.reads += 1
            if was is not None:
                self._busy.discard(was)
            self._busy.add(chain)
            self._free.pop(chain, None)

    def give(self, chain: int | None, left: Head | None) -> None:
        """The end of a lease: ``chain`` is no longer busy, and ``left`` (a committed
        head) is known unless a newer head of its chain already is."""
        with self._lock:
            if chain is not None:
                self._busy.discard(chain)
            if left is not None:
                known = self._free.get(left.chain)
                if known is None or known.seq < left.seq:
                    self._free[left.chain] = left


class KnownHead:
    """One transaction's use of its process's :class:`KnownHeads`: the chain it seals
    onto and the head its seal left, given back by :meth:`settle` after the commit. A
    transaction that rolls back gives no head back (it is read again later), and
    :meth:`release`, called whatever happened, ends its use of the chain. A second seal
    in the same transaction continues the head the first one left (the transaction
    holds that head's lock, and must hold one only)."""

    def __init__(self, heads: KnownHeads) -> None:
        self._heads = heads
        self._chain: int | None = None
        self.left: Head | None = None

    @property
    def offset(self) -> int:
        return self._heads.offset

    def avoided(self) -> list[int]:
        return self._heads.avoided()

    def reserve(self) -> tuple[int, list[int]]:
        """The chain a read prefers (busy for this transaction until it ends) and those
        it takes last (:meth:`KnownHeads.reserve`)."""
        chain, avoided = self._heads.reserve()
        self._chain = chain if chain >= 0 else None
        return chain, avoided

    def take(self) -> Head | None:
        if self.left is not None:
            return self.left
        head = self._heads.take()
        if head is not None:
            self._chain = head.chain
        return head

    def read(self, chain: int, *, missed: bool) -> None:
        """This transaction read the head of ``chain`` (after a miss, or knowing none)."""
        self._heads.use(self._chain, chain, missed=missed)
        self._chain = chain

    def settle(self) -> None:
        """After the commit."""
        self._heads.give(self._chain, self.left)
        self._chain = self.left = None

    def release(self) -> None:
        """Whenever the transaction ended: a lease not settled gives no head back."""
        if self._chain is not None or self.left is not None:
            self._heads.give(self._chain, None)
            self._chain = self.left = None


def claim_start(engine: Engine) -> tuple[int, Any]:
    """This process's starting chain on PostgreSQL, and the connection that holds it
    (close it to give the chain up; ``None`` when nothing is held): the first of
    :data:`SPREAD` whose session advisory lock no other process holds, on a connection
    of its own outside the pool, so two live processes of a deployment never start on
    the same chain. Advisory locks are per database, and a process that ends (or whose
    connection the server drops) gives its chain up. With all 16 held, or the database
    out of reach, a chain from the process id, held by nothing: only how often writers
    meet depends on it, never what they write."""
    fallback = os.getpid() % CHAINS_POSTGRESQL
    dialect = engine.dialect
    cargs, cparams = dialect.create_connect_args(engine.url)
    try:
        connection = dialect.connect(*cargs, **cparams)
    except dialect.loaded_dbapi.Error:
        return fallback, None
    try:
        connection.autocommit = True
        cursor = connection.cursor()
        for slot, chain in enumerate(SPREAD):
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", (START_LOCK, slot))
            claimed = cursor.fetchone()
            if claimed is not None and claimed[0]:
                cursor.close()
                return chain, connection
    except dialect.loaded_dbapi.Error:
        pass
    connection.close()
    return fallback, None


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
    anchor event after them when ``anchors`` says one is due; onto a head ``known``
    holds when it is still the chain's (one statement on PostgreSQL, two on SQLite)."""
    chains = chain_count(connection)
    again = known is not None and known.left is not None  # this transaction sealed already
    anchor = anchors is not None and chains > 1 and not again and anchors.due()
    was = known.take() if known is not None and not anchor else None
    if was is not None:
        moved = _advance(connection, seal, was, events)
        if moved is not None:
            assert known is not None
            known.left = moved
            return
    if known is None:
        head = _take_head(connection, seal)
    else:
        # After a miss the chain missed comes first (the compare-and-set may have left
        # it locked); else a chain reserved from the starting one on.
        prefer, avoid = (was.chain, known.avoided()) if was is not None else known.reserve()
        head = _take_head(
            connection,
            seal,
            prefer=prefer,
            offset=known.offset,
            avoid=avoid if chains > 1 else [],
        )
        known.read(head.chain, missed=was is not None)
    if anchor:
        events = [*events, _anchor(connection, head.chain)]
    moved = _seal_onto(connection, seal, head, events)
    if known is not None:
        known.left = moved


def _advance(
    connection: Connection,
    seal: AuditSeal,
    was: Head,
    events: Sequence[Mapping[str, Any]],
) -> Head | None:
    """Move the head from ``was`` past ``events`` if it is still ``was`` and, on
    PostgreSQL, no other transaction holds it, and insert them (the events' ids are
    drawn after the head is taken: SQLite's write lock, PostgreSQL's row lock); the head
    they left, or ``None`` when the chain had moved on or was held."""
    rows, moved = _sealed(seal, was, events)
    if connection.dialect.name == "postgresql":
        return moved if _seal_statement(connection, was, moved, rows) else None
    if _ADVANCE_HEAD.count(connection, _cas(was, moved)) != 1:
        return None
    _INSERT_EVENT.run_many(connection, rows)
    return moved


def _cas(was: Head, moved: Head) -> dict[str, Any]:
    return {
        "p_chain": was.chain,
        "p_was_seq": was.seq,
        "p_was_hash": was.hash,
        "p_was_mac": was.mac,
        "p_seq": moved.seq,
        "p_hash": moved.hash,
        "p_mac": moved.mac,
    }


def _seal_statement(
    connection: Connection, was: Head, moved: Head, rows: Sequence[Mapping[str, Any]]
) -> bool:
    """PostgreSQL's one sealing statement (:data:`_SEAL`): whether it moved the head
    (and so inserted every event)."""
    parameters = _cas(was, moved)
    for name in _EVENT_COLUMNS:
        parameters[f"e_{name}"] = [row[name] for row in rows]
    parameters["e_at"] = [_utc(at) for at in parameters["e_at"]]
    inserted = _SEAL.count(connection, parameters)
    if inserted not in (0, len(rows)):
        raise RuntimeError(f"the audit seal inserted {inserted} of {len(rows)} events")
    return inserted == len(rows)


def _utc(at: datetime) -> datetime:
    """As the table's type stores it (``UTCDateTime``): aware, in UTC."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return at.astimezone(UTC)


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
    """Seal ``events`` onto a head this transaction has locked."""
    rows, moved = _sealed(seal, head, events)
    if connection.dialect.name == "postgresql":
        if not _seal_statement(connection, head, moved, rows):
            raise RuntimeError(f"the locked head of audit chain {head.chain} moved")
        return moved
    _INSERT_EVENT.run_many(connection, rows)
    _set_head(connection, moved)
    return moved


def _take_head(
    connection: Connection,
    seal: AuditSeal,
    *,
    prefer: int = -1,
    offset: int = 0,
    avoid: Sequence[int] = (),
) -> Head:
    """Lock a chain's head: on PostgreSQL ``prefer`` if no other transaction holds it
    (this one may already: a compare-and-set that missed can leave it locked), else the
    first from ``offset`` on that none holds, those in ``avoid`` last; when all are held
    (or none exists yet), wait for one picked by thread."""
    chains = chain_count(connection)
    if chains > 1:
        row = _FREE_HEAD.first(
            connection,
            {"p_chains": chains, "p_prefer": prefer, "p_offset": offset, "p_avoid": list(avoid)},
        )
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
    _MOVE_HEAD.run(
        connection,
        {"p_chain": head.chain, "p_seq": head.seq, "p_hash": head.hash, "p_mac": head.mac},
    )


def _head(row: Sequence[Any]) -> Head:
    """A head from its row (``_COLUMNS``: id, seq, hash, mac)."""
    chain, seq, last, mac = row
    return Head(seq=int(seq), hash=last, mac=mac, chain=int(chain))


def _read_head(connection: Connection, chain: int) -> Head | None:
    row = _LOCKED_HEAD.first(connection, {"p_chain": chain})
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
