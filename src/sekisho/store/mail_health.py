"""Whether sign-in email is being delayed right now, read from the outbox, so that the
person waiting is told (docs/flows/email-sign-in.md, "When email cannot be delivered").

Invariant (SECURITY.md case 10): the answer is about the deployment's mail, never about
one message or address. Everybody who asks at the same moment gets the same answer, so
it tells nobody whether an account exists (mail to an address without an account is
never sent, so an answer about "your" message would).

Delayed: some pending message has failed a delivery attempt, and no message queued
after it has been delivered since. One address that the relay keeps refusing does not
count (the messages after it are delivered); a relay that is down or refuses everything
does. Every instance reads the same table, so they all agree, whichever process
delivers the mail.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from sekisho.store.database import Database
from sekisho.store.tables import outbox

CACHE_SECONDS = 1.0


class MailHealth:
    """The answer is kept for ``cache_seconds`` per process, so that waiting pages
    polling every second or two cost one small query per process, not one each."""

    def __init__(self, database: Database, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self._database = database
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._read_at = -cache_seconds
        self._delayed = False

    def delayed(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._read_at < self._cache_seconds:
                return self._delayed
        delayed = self._read()
        with self._lock:
            self._delayed, self._read_at = delayed, now
        return delayed

    def _read(self) -> bool:
        with self._database.reading() as repos:
            oldest_failing = repos.connection.execute(
                select(func.min(outbox.c.id)).where(
                    outbox.c.status == "pending", outbox.c.last_error.is_not(None)
                )
            ).scalar_one()
            if oldest_failing is None:
                return False
            delivered_since = repos.connection.execute(
                select(outbox.c.id)
                .where(outbox.c.id > oldest_failing, outbox.c.status == "sent")
                .limit(1)
            ).first()
        return delivered_since is None
