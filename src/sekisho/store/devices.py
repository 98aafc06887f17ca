"""The browsers each account has signed in from, by keyed hash of their device cookie
(the "new browser" notification, docs/flows/recovery.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from sekisho.store.tables import known_devices


class SqlKnownDevices:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def seen(self, user_id: str, digest: str, *, now: datetime) -> bool:
        t = known_devices
        dialect = postgresql if self._c.dialect.name == "postgresql" else sqlite
        inserted = self._c.execute(
            dialect.insert(t)
            .values(digest=digest, user_id=user_id, first_seen_at=now, last_seen_at=now)
            .on_conflict_do_nothing(index_elements=[t.c.digest])
            .returning(t.c.digest)
        ).first()
        if inserted is not None:
            return False
        self._c.execute(update(t).where(t.c.digest == digest).values(last_seen_at=now))
        return True

    def any_for(self, user_id: str) -> bool:
        t = known_devices
        row = self._c.execute(select(t.c.digest).where(t.c.user_id == user_id).limit(1)).first()
        return row is not None
