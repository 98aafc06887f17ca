"""The tamper-evident audit log: a fixed set of hash chains over the audit events
(docs/audit.md).

Invariant: in chain ``c``, event number ``seq`` (1, 2, 3, ... with no gap) carries
``hash = HMAC-SHA256(chain key, canonical JSON of its stored fields, its seq, the id of the
key that sealed it, the previous event's hash of the same chain and, for c > 0, c)``, and
each chain's head row carries the newest ``seq`` and ``hash`` under a MAC of its own that
covers ``c``. The chain key is derived from the server secret, so whoever can write to the
database but does not hold the secret cannot re-seal an event they changed, moved (within
or between chains) or deleted, nor a head they moved back. Chain 0 is the one chain of
the deployments before there were several: its seals and head MAC omit the chain number,
so what was sealed then still verifies.

An anchor event (``audit.chains_anchored``) records the heads of the other chains as they
were when it was sealed; a chain later found shorter than an anchor says, or with another
hash at that place, was cut back.

A key change (``sekisho key adopt``) starts a new segment in every chain that holds
events: the ``deployment.key_adopted`` event in chain 0, ``audit.chain_rekeyed`` in the
others, each sealed under the new key over the last hash made under the old one; the
events before it can only be checked with the old key.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from sekisho.core.keys import Keyring

GENESIS = ""  # the "previous hash" of event 1
KEY_ADOPTED = "deployment.key_adopted"  # the only event at which the sealing key may change
KEY_REFUSED = "deployment.key_refused"  # written unsealed by a process without the key
ANCHORED = "audit.chains_anchored"  # records the other chains' heads (seq, hash)
REKEYED = "audit.chain_rekeyed"  # a key adoption's mark in the chains other than 0
KEY_CHANGES = frozenset({KEY_ADOPTED, REKEYED})
SEALED_FIELDS = (
    "at",
    "event",
    "outcome",
    "user_id",
    "email",
    "session_id",
    "flow_id",
    "ip",
    "user_agent",
    "amr",
    "aal",
    "detail",
    "request_id",
)


def instant(value: Any) -> Any:
    """Instants as UTC ISO 8601 (stored zone-less on SQLite); other values as they are."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    return value


class AuditSeal:
    """Seals events and the chain head with keys derived from the server secret."""

    def __init__(self, keys: Keyring) -> None:
        self._keys = keys
        self.key_id = keys.digest("audit-chain-key-id", "sekisho audit chain")[:16]

    def seal(
        self, fields: Mapping[Any, Any], *, seq: int, key_id: str, prev: str, chain: int = 0
    ) -> str:
        """The event's hash: HMAC over the canonical JSON (sorted keys, no whitespace,
        instants as UTC ISO 8601) of its stored ``SEALED_FIELDS``, seq, key id, the
        previous hash and (chains above 0) the chain. Any change to one of them changes
        the hash."""
        document = {name: instant(fields[name]) for name in SEALED_FIELDS}
        document |= {"seq": seq, "key_id": key_id, "prev": prev}
        if chain:
            document["chain"] = chain
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return self._keys.digest("audit-chain", canonical)

    def head_mac(self, seq: int, hash: str, chain: int = 0) -> str:
        """A chain head's MAC: a head moved back to an earlier event (the tail deleted)
        or to another chain needs a MAC the database never held unless it was copied at
        that time."""
        return self._keys.digest("audit-chain-head", _head_text(seq, hash, chain))

    def head_matches(self, seq: int, hash: str, mac: str, chain: int = 0) -> bool:
        return self._keys.matches("audit-chain-head", _head_text(seq, hash, chain), mac)


def _head_text(seq: int, hash: str, chain: int) -> str:
    return f"{chain}:{seq}:{hash}" if chain else f"{seq}:{hash}"


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str
    mac: str
    chain: int = 0


@dataclass(frozen=True, slots=True)
class Claim:
    """What an anchor event (``anchor_id``) recorded of a chain: its head at ``seq``
    with ``hash`` (``seq`` 0: the chain existed, still empty)."""

    seq: int
    hash: str
    anchor_id: int


def anchor_detail(heads: Iterable[Head]) -> dict[str, Any]:
    """An anchor event's detail: ``{"heads": {chain: [seq, hash]}}``."""
    return {"heads": {str(head.chain): [head.seq, head.hash] for head in heads}}


def claims(anchors: Iterable[Mapping[Any, Any]]) -> dict[int, list[Claim]]:
    """What the anchor events (rows with ``id`` and ``detail``) recorded, by chain.
    They are read before the walk; each anchor is checked by its own chain's walk."""
    found: dict[int, list[Claim]] = {}
    for row in anchors:
        heads = json.loads(row["detail"]).get("heads", {})
        for chain, (seq, hash) in heads.items():
            found.setdefault(int(chain), []).append(Claim(int(seq), str(hash), int(row["id"])))
    return found


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``sekisho audit verify`` found. ``broken_at`` is the id of the first event
    whose link does not hold (``None`` when the chain is intact)."""

    checked: int
    earlier_key: int
    refusals: int = 0
    broken_at: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.reason == ""


def verify(
    rows: Iterable[Mapping[Any, Any]],
    heads: Mapping[int, Head],
    seal: AuditSeal,
    *,
    chains: int = 1,
    anchored: Mapping[int, Sequence[Claim]] | None = None,
) -> Verdict:
    """Walk every event, ordered by chain (rows outside any chain first) then id, check
    each chain's links and its head, chains ``0 .. chains - 1`` all present, and what the
    anchors recorded of each chain.

    A modified event fails its own seal; a deleted one leaves a gap in ``seq`` (and the
    next event's seal covers the missing hash); reordered events break the ``seq`` order;
    an event moved to another chain fails its seal; a deleted tail leaves the head
    pointing past the newest event, and a tail deleted with its head moved back (to a
    head copied earlier) falls short of a later anchor."""
    tally = Verdict(checked=0, earlier_key=0)
    anchored = anchored or {}
    seen: set[int] = set()
    for chain, group in groupby(rows, key=lambda row: row["chain"]):
        if chain is None:
            tally = _outside(group, tally)
        else:
            seen.add(int(chain))
            tally = _walk(int(chain), group, heads.get(int(chain)), seal, anchored, tally)
        if not tally.intact:
            return tally
    for chain in sorted((set(range(chains)) | set(heads) | set(anchored)) - seen):
        tally = _empty(chain, heads.get(chain), seal, anchored.get(chain, ()), tally)
        if not tally.intact:
            return tally
    return tally


def _outside(rows: Iterable[Mapping[Any, Any]], tally: Verdict) -> Verdict:
    """Rows in no chain: only the refusals of processes without the key may be there."""
    for row in rows:
        if row["seq"] is None and row["hash"] is None and row["event"] == KEY_REFUSED:
            tally = replace(tally, refusals=tally.refusals + 1)
        else:
            return _broken(tally, int(row["id"]), "it is not sealed")
    return tally


def _walk(
    chain: int,
    rows: Iterable[Mapping[Any, Any]],
    head: Head | None,
    seal: AuditSeal,
    anchored: Mapping[int, Sequence[Claim]],
    tally: Verdict,
) -> Verdict:
    claimed = {claim.seq: claim for claim in anchored.get(chain, ())}
    checked, earlier = tally.checked, tally.earlier_key
    prev = GENESIS
    last: Mapping[Any, Any] | None = None
    for row in rows:
        event_id = int(row["id"])
        counts = replace(tally, checked=checked, earlier_key=earlier)
        expected = (int(last["seq"]) if last else 0) + 1
        if row["hash"] is None or row["seq"] is None:
            return _broken(counts, event_id, "it is not sealed")
        if int(row["seq"]) != expected:
            return _broken(
                counts,
                event_id,
                f"it is event {row['seq']} of chain {chain} where event {expected} belongs "
                "(an event before it was deleted, or events were reordered)",
            )
        key_changed = last is not None and row["key_id"] != last["key_id"]
        if key_changed and row["event"] not in KEY_CHANGES:
            return _broken(counts, event_id, "its sealing key changes without a key adoption")
        if row["key_id"] == seal.key_id:
            made = seal.seal(row, seq=expected, key_id=row["key_id"], prev=prev, chain=chain)
            if not _same(made, row["hash"]):
                return _broken(
                    counts,
                    event_id,
                    "its content, position or predecessor does not match its seal",
                )
            checked += 1
        else:
            earlier += 1
        claim = claimed.pop(expected, None)
        if claim is not None and not _same(claim.hash, str(row["hash"])):
            return _broken(
                counts, event_id, f"it is not the event the anchor {claim.anchor_id} recorded"
            )
        prev = str(row["hash"])
        last = row
    counts = replace(tally, checked=checked, earlier_key=earlier)
    if last is None:  # a group from groupby is never empty
        return counts
    verdict = _check_head(counts, chain, last, head, seal)
    beyond = [claim for claim in claimed.values() if claim.seq > 0]
    if verdict.intact and beyond:
        claim = max(beyond, key=lambda c: c.seq)
        return _broken(
            counts,
            int(last["id"]),
            f"the anchor {claim.anchor_id} recorded event {claim.seq} of chain {chain}, but "
            f"the chain ends at event {last['seq']} (events after this one were deleted)",
        )
    return verdict


def _empty(
    chain: int, head: Head | None, seal: AuditSeal, claimed: Sequence[Claim], tally: Verdict
) -> Verdict:
    """A chain without events: its head exists, records none, and no anchor saw more."""
    if head is None:
        return _broken(tally, None, f"the head of chain {chain} is missing")
    if not seal.head_matches(head.seq, head.hash, head.mac, chain):
        return _broken(tally, None, f"the head of chain {chain} does not match its seal")
    if head.seq != 0:
        return _broken(
            tally, None, f"the head of chain {chain} records {head.seq} events, the log none"
        )
    for claim in claimed:
        if claim.seq > 0:
            return _broken(
                tally,
                None,
                f"the anchor {claim.anchor_id} recorded event {claim.seq} of chain {chain}, "
                "which holds none",
            )
    return tally


def _check_head(
    tally: Verdict, chain: int, last: Mapping[Any, Any], head: Head | None, seal: AuditSeal
) -> Verdict:
    last_id = int(last["id"])
    if last["key_id"] != seal.key_id:
        return _broken(tally, last_id, "the newest event is not sealed under this deployment's key")
    if head is None:
        return _broken(tally, last_id, f"the head of chain {chain} is missing")
    if not seal.head_matches(head.seq, head.hash, head.mac, chain):
        return _broken(tally, last_id, "the chain head does not match its seal")
    if head.seq != int(last["seq"]) or not _same(head.hash, str(last["hash"])):
        return _broken(
            tally,
            last_id,
            f"the chain head records {head.seq} events but the log ends at event {last['seq']} "
            "(events after this one were deleted)",
        )
    return tally


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _broken(tally: Verdict, event_id: int | None, reason: str) -> Verdict:
    return replace(tally, broken_at=event_id, reason=reason)
