"""The mail worker's side of the outbox: claim with a lease, then settle.

A :class:`~sekisho.store.lease_queue.LeaseQueue`: a message is claimed by one worker at
a time, leased for a while so that a worker that dies mid-send does not lose it, and its
sealed payload (which holds the link and code) is erased as soon as it is settled. The
worker claims the due messages in batches and settles a batch in one transaction with
its audit events (docs/architecture.md: one claim and one settling transaction per
burst, not per message).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sekisho.core.records import AuditEvent
from sekisho.store.database import Database
from sekisho.store.lease_queue import LeaseQueue, Retried, Settled
from sekisho.store.repositories import SqlRepositories
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


class OutboxQueue:
    def __init__(self, database: Database, *, lease: timedelta = timedelta(seconds=120)) -> None:
        self._queue = LeaseQueue(
            database,
            outbox,
            claimed=("kind", "sealed_payload", "attempts"),
            lease=lease,
            erased=("sealed_payload",),
            pending_only=False,
        )

    def claim(
        self,
        now: datetime,
        *,
        skip: Collection[int] = (),
        limit: int = 1,
        look_first: bool = True,
        then: Callable[[SqlRepositories, list[ClaimedMessage]], None] | None = None,
    ) -> list[ClaimedMessage]:
        """Lease the oldest due messages (at most ``limit``, oldest first), other than
        those in ``skip``, in one transaction, and call ``then`` with them in it (the
        worker reads what it decides on there, rather than in a transaction of its own).
        ``look_first=False`` when mail is known to be waiting (the worker was woken by
        its commit): see :meth:`LeaseQueue.claim`."""
        claimed: list[ClaimedMessage] = []

        def read(repos: SqlRepositories, rows: list[tuple[Any, ...]]) -> None:
            claimed.extend(
                ClaimedMessage(id=row[0], kind=row[1], sealed_payload=row[2], attempts=row[3])
                for row in rows
            )
            if then is not None:
                then(repos, claimed)

        self._queue.claim(now, limit=limit, skip=skip, look_first=look_first, then=read)
        return claimed

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
        self._queue.finish(
            now=now,
            settled=[Settled(s.message_id, s.status, s.audit, s.error) for s in settled],
            retries=[Retried(r.message_id, r.at, r.error) for r in retries],
            released=released,
        )

    def release(self, message_id: int) -> None:
        """Give a claimed message back as if it had never been claimed: no lease, and
        the claim's attempt not counted."""
        self._queue.release(message_id)

    def counts(self) -> dict[str, int]:
        return self._queue.counts()
