"""The mail worker's side of the outbox: claim with a lease, then settle.

A message is claimed by one worker at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
SQLite has a single writer), leased for a while so that a worker that dies mid-send
does not lose it, and its sealed payload (which holds the link and code) is erased as
soon as it is settled. The worker claims the due messages in batches and settles a
batch in one transaction with its audit events (docs/architecture.md: one claim and one
settling transaction per burst, not per message).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, true, update

from sekisho.core.records import AuditEvent
from sekisho.store.database import Database
from sekisho.store.tables import outbox


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    id: int
    kind: str
    sealed_payload: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Settlement:
    """A claimed message finished for good (``sent``, ``dropped`` or ``failed``), with
    the audit event that says so."""

    message_id: int
    status: str
    audit: AuditEvent
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """A claimed message whose delivery failed, to be tried again at ``at``."""

    message_id: int
    at: datetime
    error: str


_CLAIM = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("p_ids", expanding=True)), outbox.c.status == "pending")
    .values(locked_until=bindparam("p_until"), attempts=outbox.c.attempts + 1)
    .returning(outbox.c.id, outbox.c.kind, outbox.c.sealed_payload, outbox.c.attempts)
)
_SETTLE = (
    update(outbox)
    .where(outbox.c.id == bindparam("p_id"))
    .values(
        status=bindparam("p_status"),
        finished_at=bindparam("p_now"),
        locked_until=None,
        sealed_payload=None,
        last_error=bindparam("p_error"),
    )
)
_RETRY = (
    update(outbox)
    .where(outbox.c.id == bindparam("p_id"))
    .values(next_attempt_at=bindparam("p_at"), locked_until=None, last_error=bindparam("p_error"))
)
_RELEASE = (
    update(outbox)
    .where(outbox.c.id == bindparam("p_id"), outbox.c.status == "pending")
    .values(locked_until=None, attempts=outbox.c.attempts - 1)
)


class OutboxQueue:
    def __init__(self, database: Database, *, lease: timedelta = timedelta(seconds=120)) -> None:
        self._database = database
        self._lease = lease

    def claim(
        self, now: datetime, *, skip: Collection[int] = (), limit: int = 1
    ) -> list[ClaimedMessage]:
        """Lease the oldest due messages (at most ``limit``, oldest first), other than
        those in ``skip``, in one transaction."""
        due = (
            select(outbox.c.id)
            .where(
                outbox.c.status == "pending",
                outbox.c.next_attempt_at <= now,
                or_(outbox.c.locked_until.is_(None), outbox.c.locked_until <= now),
            )
            .where(outbox.c.id.not_in(skip) if skip else true())
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if self._database.is_sqlite:
            # The idle poll looks without the writer lock; only a due message takes it.
            with self._database.reading() as repos:
                found = repos.connection.execute(due.limit(1)).first()
            if found is None:
                return []
        with self._database.begin() as connection:
            ids = list(connection.execute(due).scalars())
            if not ids:
                return []
            rows = connection.execute(_CLAIM, {"p_ids": ids, "p_until": now + self._lease}).all()
        return sorted(
            (
                ClaimedMessage(id=row[0], kind=row[1], sealed_payload=row[2], attempts=row[3])
                for row in rows
            ),
            key=lambda message: message.id,
        )

    def finish(
        self,
        *,
        now: datetime,
        settled: Sequence[Settlement] = (),
        retries: Sequence[Retry] = (),
        released: Sequence[int] = (),
    ) -> None:
        """What became of a claimed batch, in one transaction: settled messages (their
        payload erased, their audit events sealed with them), retries, and messages given
        back unattempted."""
        with self._database.transaction() as repos:
            for settlement in settled:
                repos.connection.execute(
                    _SETTLE,
                    {
                        "p_id": settlement.message_id,
                        "p_status": settlement.status,
                        "p_now": now,
                        "p_error": settlement.error[:500] if settlement.error else None,
                    },
                )
                repos.audit.append(settlement.audit)
            for retry in retries:
                repos.connection.execute(
                    _RETRY,
                    {"p_id": retry.message_id, "p_at": retry.at, "p_error": retry.error[:500]},
                )
            for message_id in released:
                repos.connection.execute(_RELEASE, {"p_id": message_id})

    def release(self, message_id: int) -> None:
        """Give a claimed message back as if it had never been claimed: no lease, and
        the claim's attempt not counted."""
        with self._database.begin() as connection:
            connection.execute(_RELEASE, {"p_id": message_id})

    def counts(self) -> dict[str, int]:
        with self._database.reading() as repos:
            rows = repos.connection.execute(select(outbox.c.status, outbox.c.id)).all()
        result: dict[str, int] = {}
        for status, _ in rows:
            result[status] = result.get(status, 0) + 1
        return result
