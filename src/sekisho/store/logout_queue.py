"""The worker's side of the back-channel logout queue (``store/logouts.py`` fills it),
a :class:`~sekisho.store.lease_queue.LeaseQueue` like the mail outbox: a worker claims
due deliveries under a lease, so one that dies mid-delivery does not lose them, and
settles each once (delivered, dropped or failed) with its audit event in the same
transaction; settling touches only deliveries still pending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sekisho.core.records import AuditEvent
from sekisho.store.database import Database
from sekisho.store.lease_queue import LeaseQueue, Retried, Settled
from sekisho.store.tables import oidc_logout_deliveries


@dataclass(frozen=True, slots=True)
class ClaimedLogout:
    id: int
    client_id: str
    user_id: str
    session_id: str
    jti: str
    reason: str
    attempts: int


@dataclass(frozen=True, slots=True)
class LogoutSettlement:
    """A claimed delivery finished for good (``delivered``, ``dropped`` or ``failed``)."""

    delivery_id: int
    status: str
    audit: AuditEvent
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LogoutRetry:
    delivery_id: int
    at: datetime
    error: str


class LogoutQueue:
    """The worker's side: claim due deliveries under a lease, then settle them."""

    def __init__(self, database: Database, *, lease: timedelta = timedelta(seconds=120)) -> None:
        self._queue = LeaseQueue(
            database,
            oidc_logout_deliveries,
            claimed=("client_id", "user_id", "session_id", "jti", "reason", "attempts"),
            lease=lease,
            pending_only=True,
        )

    def claim(self, now: datetime, *, limit: int) -> list[ClaimedLogout]:
        return [
            ClaimedLogout(
                id=row[0],
                client_id=row[1],
                user_id=row[2],
                session_id=row[3],
                jti=row[4],
                reason=row[5],
                attempts=row[6],
            )
            for row in self._queue.claim(now, limit=limit)
        ]

    def finish(
        self,
        *,
        now: datetime,
        settled: Sequence[LogoutSettlement] = (),
        retries: Sequence[LogoutRetry] = (),
        released: Sequence[int] = (),
    ) -> None:
        """What became of a claimed batch, with the audit events, in one transaction;
        ``released``: deliveries given back unattempted (no lease, attempt uncounted)."""
        self._queue.finish(
            now=now,
            settled=[Settled(s.delivery_id, s.status, s.audit, s.error) for s in settled],
            retries=[Retried(r.delivery_id, r.at, r.error) for r in retries],
            released=released,
        )

    def counts(self) -> dict[str, int]:
        return self._queue.counts()
