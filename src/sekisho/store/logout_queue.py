"""The worker's side of the back-channel logout queue (``store/logouts.py`` fills it),
kept like the mail outbox (``store/outbox_queue.py``): a worker claims due deliveries
under a lease, so one that dies mid-delivery does not lose them, and settles each once
(delivered, dropped or failed) with its audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update

from sekisho.core.records import AuditEvent
from sekisho.store.database import Database
from sekisho.store.tables import oidc_logout_deliveries

_QUEUE = oidc_logout_deliveries


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


_CLAIM = (
    update(_QUEUE)
    .where(_QUEUE.c.id.in_(bindparam("p_ids", expanding=True)), _QUEUE.c.status == "pending")
    .values(locked_until=bindparam("p_until"), attempts=_QUEUE.c.attempts + 1)
    .returning(
        _QUEUE.c.id,
        _QUEUE.c.client_id,
        _QUEUE.c.user_id,
        _QUEUE.c.session_id,
        _QUEUE.c.jti,
        _QUEUE.c.reason,
        _QUEUE.c.attempts,
    )
)
_SETTLE = (
    update(_QUEUE)
    .where(_QUEUE.c.id == bindparam("p_id"), _QUEUE.c.status == "pending")
    .values(
        status=bindparam("p_status"),
        finished_at=bindparam("p_now"),
        locked_until=None,
        last_error=bindparam("p_error"),
    )
)
_RETRY = (
    update(_QUEUE)
    .where(_QUEUE.c.id == bindparam("p_id"), _QUEUE.c.status == "pending")
    .values(next_attempt_at=bindparam("p_at"), locked_until=None, last_error=bindparam("p_error"))
)


class LogoutQueue:
    """The worker's side: claim due deliveries under a lease, then settle them."""

    def __init__(self, database: Database, *, lease: timedelta = timedelta(seconds=120)) -> None:
        self._database = database
        self._lease = lease

    def claim(self, now: datetime, *, limit: int) -> list[ClaimedLogout]:
        due = (
            select(_QUEUE.c.id)
            .where(
                _QUEUE.c.status == "pending",
                _QUEUE.c.next_attempt_at <= now,
                or_(_QUEUE.c.locked_until.is_(None), _QUEUE.c.locked_until <= now),
            )
            .order_by(_QUEUE.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if self._database.is_sqlite:
            # The idle poll looks without the writer lock; only a due delivery takes it.
            with self._database.reading() as repos:
                if repos.connection.execute(due.limit(1)).first() is None:
                    return []
        with self._database.begin() as connection:
            ids = list(connection.execute(due).scalars())
            if not ids:
                return []
            rows = connection.execute(_CLAIM, {"p_ids": ids, "p_until": now + self._lease}).all()
        return sorted(
            (
                ClaimedLogout(
                    id=row[0],
                    client_id=row[1],
                    user_id=row[2],
                    session_id=row[3],
                    jti=row[4],
                    reason=row[5],
                    attempts=row[6],
                )
                for row in rows
            ),
            key=lambda claimed: claimed.id,
        )

    def finish(
        self,
        *,
        now: datetime,
        settled: Sequence[LogoutSettlement] = (),
        retries: Sequence[LogoutRetry] = (),
    ) -> None:
        """What became of a claimed batch, with the audit events, in one transaction."""
        with self._database.transaction() as repos:
            for settlement in settled:
                repos.connection.execute(
                    _SETTLE,
                    {
                        "p_id": settlement.delivery_id,
                        "p_status": settlement.status,
                        "p_now": now,
                        "p_error": settlement.error[:500] if settlement.error else None,
                    },
                )
                repos.audit.append(settlement.audit)
            for retry in retries:
                repos.connection.execute(
                    _RETRY,
                    {"p_id": retry.delivery_id, "p_at": retry.at, "p_error": retry.error[:500]},
                )

    def counts(self) -> dict[str, int]:
        with self._database.reading() as repos:
            rows = repos.connection.execute(select(_QUEUE.c.status)).scalars().all()
        result: dict[str, int] = {}
        for status in rows:
            result[status] = result.get(status, 0) + 1
        return result
