"""The mail worker's side of the outbox: claim with a lease, then settle.

A message is claimed by one worker at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
SQLite has a single writer), leased for a while so that a worker that dies mid-send
does not lose it, and its sealed payload (which holds the link and code) is erased as
soon as it is settled.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, true, update

from sekisho.core.records import AuditEvent
from sekisho.store.database import Database
from sekisho.store.tables import outbox


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    id: int
    kind: str
    sealed_payload: str
    attempts: int


class OutboxQueue:
    def __init__(self, database: Database, *, lease: timedelta = timedelta(seconds=120)) -> None:
        self._database = database
        self._lease = lease

    def claim(self, now: datetime, *, skip: Collection[int] = ()) -> ClaimedMessage | None:
        """Lease the oldest due message, other than those in ``skip``."""
        due = (
            select(outbox.c.id)
            .where(
                outbox.c.status == "pending",
                outbox.c.next_attempt_at <= now,
                or_(outbox.c.locked_until.is_(None), outbox.c.locked_until <= now),
            )
            .where(outbox.c.id.not_in(skip) if skip else true())
            .order_by(outbox.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if self._database.is_sqlite:
            # The idle poll looks without the writer lock; only a due message takes it.
            with self._database.reading() as repos:
                found = repos.connection.execute(due).scalar_one_or_none()
            if found is None:
                return None
        with self._database.begin() as connection:
            message_id = connection.execute(due).scalar_one_or_none()
            if message_id is None:
                return None
            row = connection.execute(
                update(outbox)
                .where(outbox.c.id == message_id, outbox.c.status == "pending")
                .values(locked_until=now + self._lease, attempts=outbox.c.attempts + 1)
                .returning(outbox.c.id, outbox.c.kind, outbox.c.sealed_payload, outbox.c.attempts)
            ).first()
        if row is None:
            return None
        return ClaimedMessage(id=row[0], kind=row[1], sealed_payload=row[2], attempts=row[3])

    def settle(
        self,
        message_id: int,
        *,
        status: str,
        now: datetime,
        error: str | None = None,
        audit: AuditEvent | None = None,
    ) -> None:
        """Finish a message for good (``sent``, ``dropped`` or ``failed``) and erase its
        payload, with the audit event that says so in the same transaction."""
        with self._database.transaction() as repos:
            repos.connection.execute(
                update(outbox)
                .where(outbox.c.id == message_id)
                .values(
                    status=status,
                    finished_at=now,
                    locked_until=None,
                    sealed_payload=None,
                    last_error=error[:500] if error else None,
                )
            )
            if audit is not None:
                repos.audit.append(audit)

    def release(self, message_id: int) -> None:
        """Give a claimed message back as if it had never been claimed: no lease, and
        the claim's attempt not counted."""
        with self._database.begin() as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == message_id, outbox.c.status == "pending")
                .values(locked_until=None, attempts=outbox.c.attempts - 1)
            )

    def retry_later(self, message_id: int, *, at: datetime, error: str) -> None:
        with self._database.begin() as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == message_id)
                .values(next_attempt_at=at, locked_until=None, last_error=error[:500])
            )

    def counts(self) -> dict[str, int]:
        with self._database.reading() as repos:
            rows = repos.connection.execute(select(outbox.c.status, outbox.c.id)).all()
        result: dict[str, int] = {}
        for status, _ in rows:
            result[status] = result.get(status, 0) + 1
        return result
