"""The tamper-evident audit log: one hash chain over every audit event (docs/audit.md).

Invariant: event number ``seq`` (1, 2, 3, ... with no gap) carries
``hash = HMAC-SHA256(chain key, canonical JSON of its stored fields, its seq, the id of the
key that sealed it and the previous event's hash)``, and the one-row chain head carries the
newest ``seq`` and ``hash`` under a MAC of its own. The chain key is derived from the
server secret, so whoever can write to the database but does not hold the secret cannot
re-seal an event they changed, moved or deleted, nor a head they moved back.

A key change (``sekisho key adopt``) starts a new segment: the ``deployment.key_adopted``
event is sealed under the new key over the last hash made under the old one, and the
events before it can only be checked with the old key.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sekisho.core.keys import Keyring

GENESIS = ""  # the "previous hash" of event 1
KEY_ADOPTED = "deployment.key_adopted"  # the only event at which the sealing key may change
KEY_REFUSED = "deployment.key_refused"  # written unsealed by a process without the key
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

    def seal(self, fields: Mapping[Any, Any], *, seq: int, key_id: str, prev: str) -> str:
        """The event's hash: HMAC over the canonical JSON (sorted keys, no whitespace,
        instants as UTC ISO 8601) of its stored ``SEALED_FIELDS``, seq, key id and the
        previous hash. Any change to one of them changes the hash."""
        document = {name: instant(fields[name]) for name in SEALED_FIELDS}
        document |= {"seq": seq, "key_id": key_id, "prev": prev}
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return self._keys.digest("audit-chain", canonical)

    def head_mac(self, seq: int, hash: str) -> str:
        """The chain head's MAC: a head moved back to an earlier event (the tail deleted)
        needs a MAC the database never held unless it was copied at that time."""
        return self._keys.digest("audit-chain-head", f"{seq}:{hash}")

    def head_matches(self, seq: int, hash: str, mac: str) -> bool:
        return self._keys.matches("audit-chain-head", f"{seq}:{hash}", mac)


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str
    mac: str


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


def verify(rows: Iterable[Mapping[Any, Any]], head: Head | None, seal: AuditSeal) -> Verdict:
    """Walk the events in id order and check each link, then the head.

    A modified event fails its own seal; a deleted one leaves a gap in ``seq`` (and the
    next event's seal covers the missing hash); reordered events break the ``seq`` order;
    a deleted tail leaves the head pointing past the newest event."""
    checked = earlier = refusals = 0
    prev = GENESIS
    last: Mapping[Any, Any] | None = None
    for row in rows:
        event_id = int(row["id"])
        if row["seq"] is None and row["hash"] is None and row["event"] == KEY_REFUSED:
            refusals += 1
            continue
        expected = (int(last["seq"]) if last else 0) + 1
        if row["hash"] is None or row["seq"] is None:
            return _broken(checked, earlier, event_id, "it is not sealed")
        if int(row["seq"]) != expected:
            return _broken(
                checked,
                earlier,
                event_id,
                f"it is event {row['seq']} of the chain where event {expected} belongs "
                "(an event before it was deleted, or events were reordered)",
            )
        key_changed = last is not None and row["key_id"] != last["key_id"]
        if key_changed and row["event"] != KEY_ADOPTED:
            return _broken(
                checked, earlier, event_id, "its sealing key changes without a key adoption"
            )
        if row["key_id"] == seal.key_id:
            made = seal.seal(row, seq=expected, key_id=row["key_id"], prev=prev)
            if not _same(made, row["hash"]):
                return _broken(
                    checked,
                    earlier,
                    event_id,
                    "its content, position or predecessor does not match its seal",
                )
            checked += 1
        else:
            earlier += 1
        prev = str(row["hash"])
        last = row
    verdict = _check_head(checked, earlier, last, head, seal)
    return replace(verdict, refusals=refusals)


def _check_head(
    checked: int,
    earlier: int,
    last: Mapping[Any, Any] | None,
    head: Head | None,
    seal: AuditSeal,
) -> Verdict:
    if last is None:
        if head is not None and head.seq != 0:
            return _broken(
                checked,
                earlier,
                None,
                f"the chain head records {head.seq} events, the log holds none",
            )
        return Verdict(checked=0, earlier_key=0)
    last_id = int(last["id"])
    if last["key_id"] != seal.key_id:
        return _broken(
            checked, earlier, last_id, "the newest event is not sealed under this deployment's key"
        )
    if head is None:
        return _broken(checked, earlier, last_id, "the chain head is missing")
    if not seal.head_matches(head.seq, head.hash, head.mac):
        return _broken(checked, earlier, last_id, "the chain head does not match its seal")
    if head.seq != int(last["seq"]) or not _same(head.hash, str(last["hash"])):
        return _broken(
            checked,
            earlier,
            last_id,
            f"the chain head records {head.seq} events but the log ends at event {last['seq']} "
            "(events after this one were deleted)",
        )
    return Verdict(checked=checked, earlier_key=earlier)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _broken(checked: int, earlier: int, event_id: int | None, reason: str) -> Verdict:
    return Verdict(checked=checked, earlier_key=earlier, broken_at=event_id, reason=reason)
