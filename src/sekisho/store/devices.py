"""The browsers each account has signed in from, by keyed hash of their device cookie
(the "new browser" notification, docs/flows/recovery.md).

A sign-in from a known browser, the common case, reads one row and writes nothing
unless its last sighting is a day old (docs/architecture.md: statements built once).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from sekisho.store.prepared import Prepared
from sekisho.store.tables import known_devices

SIGHTING_GRANULARITY = timedelta(days=1)

_t = known_devices
_LAST_SEEN = Prepared(
    select(_t.c.user_id, _t.c.last_seen_at).where(_t.c.digest == bindparam("p_digest"))
)
_TOUCH = Prepared(
    update(_t).where(_t.c.digest == bindparam("p_digest")).values(last_seen_at=bindparam("p_now"))
)
_ANY = Prepared(select(_t.c.digest).where(_t.c.user_id == bindparam("p_user")).limit(1))


class SqlKnownDevices:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def known(self, user_id: str, digest: str, *, now: datetime) -> bool:
        """True when this account has signed in from this browser before; its last
        sighting is then moved to ``now`` when it is a day old or more."""
        row = _LAST_SEEN.first(self._c, {"p_digest": digest})
        if row is None or row[0] != user_id:
            return False
        if now - row[1] >= SIGHTING_GRANULARITY:
            _TOUCH.run(self._c, {"p_digest": digest, "p_now": now})
        return True

    def add(self, user_id: str, digest: str, *, now: datetime) -> bool:
        """Record a browser new to this account; False when a concurrent sign-in from
        it recorded it first."""
        dialect = postgresql if self._c.dialect.name == "postgresql" else sqlite
        inserted = self._c.execute(
            dialect.insert(_t)
            .values(digest=digest, user_id=user_id, first_seen_at=now, last_seen_at=now)
            .on_conflict_do_nothing(index_elements=[_t.c.digest])
            .returning(_t.c.digest)
        ).first()
        return inserted is not None

    def any_for(self, user_id: str) -> bool:
        return _ANY.first(self._c, {"p_user": user_id}) is not None
