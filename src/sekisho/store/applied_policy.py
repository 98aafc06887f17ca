"""The policy the deployment last applied (revision 0020_policy_fingerprint).

Invariant: of several processes that start with one new policy at once, exactly one
claims it: the claim is a single compare-and-set on the one row, so the others (waiting
on its lock under PostgreSQL's READ COMMITTED, or on SQLite's writer lock) find the
fingerprint already theirs and claim nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from sekisho.store.tables import policy_fingerprint

ROW = 1


class SqlAppliedPolicy:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def claim(self, fingerprint: str, *, now: datetime) -> bool:
        """Record ``fingerprint`` as applied; True when this call changed the record
        (nothing was recorded, or another policy was), so the caller applies it."""
        dialect = postgresql if self._c.dialect.name == "postgresql" else sqlite
        inserted = self._c.execute(
            dialect.insert(policy_fingerprint)
            .values(id=ROW, fingerprint=fingerprint, applied_at=now)
            .on_conflict_do_nothing(index_elements=[policy_fingerprint.c.id])
            .returning(policy_fingerprint.c.id)
        ).first()
        if inserted is not None:
            return True
        replaced = self._c.execute(
            update(policy_fingerprint)
            .where(
                policy_fingerprint.c.id == ROW,
                policy_fingerprint.c.fingerprint != fingerprint,
            )
            .values(fingerprint=fingerprint, applied_at=now)
            .returning(policy_fingerprint.c.id)
        ).first()
        return replaced is not None
