"""Wrapping legacy hashes that were stored before Sekisho wrapped them at import
(``sekisho users wrap-legacy-hashes``; SECURITY.md case 60).

Invariants:
- each account is its own statement, and a hash is replaced only if it is still the
  one read: a sign-in that rehashed it, or a retirement that deleted it, meanwhile wins;
- wrapping keeps the password: the wrapped hash verifies exactly what the original did;
- running it twice changes nothing; a stored hash that can never verify is reported,
  never changed;
- one audit event (``passwords.wrapped``, IP ``cli``) records the counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update

from sekisho.core.records import AuditEvent
from sekisho.methods.password.hashes import Unusable, check, prepare_for_storage
from sekisho.store.database import Database
from sekisho.store.tables import passwords


@dataclass(slots=True)
class WrapSummary:
    wrapped: int = 0
    unchanged: int = 0
    unusable: list[str] = field(default_factory=list)


def wrap_legacy_hashes(database: Database, *, now: datetime) -> WrapSummary:
    summary = WrapSummary()
    with database.engine.connect() as connection:
        rows = connection.execute(select(passwords.c.user_id, passwords.c.hash)).all()
    for user_id, stored in rows:
        try:
            legacy = check(stored)
            if legacy is None or legacy.wrapped is not None:
                summary.unchanged += 1
                continue
            wrapped, scheme = prepare_for_storage(stored)
        except Unusable:
            summary.unusable.append(user_id)
            continue
        with database.engine.begin() as connection:
            replaced = connection.execute(
                update(passwords)
                .where(passwords.c.user_id == user_id, passwords.c.hash == stored)
                .values(hash=wrapped, scheme=scheme, updated_at=now)
            ).rowcount
        if replaced:
            summary.wrapped += 1
        else:
            summary.unchanged += 1
    with database.transaction() as repos:
        repos.audit.append(
            AuditEvent(
                event="passwords.wrapped",
                outcome="success",
                at=now,
                ip="cli",
                detail={
                    "by": "operator",
                    "wrapped": summary.wrapped,
                    "unchanged": summary.unchanged,
                    "unusable": len(summary.unusable),
                },
            )
        )
    return summary
