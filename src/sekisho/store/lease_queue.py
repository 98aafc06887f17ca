"""A table worked as a queue under leases: what the mail outbox (``outbox_queue.py``) and
the back-channel logout queue (``logout_queue.py``) share.

A worker claims due rows (``pending``, ``next_attempt_at`` passed, no live lease), oldest
first, one worker at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has a
single writer, and its idle poll looks without the writer lock so that only a due row
takes it). The claim counts an attempt and leases the row, so a worker that dies
mid-delivery does not lose it. A claimed batch is settled in one transaction with its
audit events (docs/architecture.md: one claim and one settling transaction per burst).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, or_, select, update

from sekisho.core.records import AuditEvent
from sekisho.store.database import Database
from sekisho.store.repositories import SqlRepositories

ERROR_CHARS = 500
Claimed = TypeVar("Claimed")


async def claim_off_the_loop(
    claim: Callable[[], Claimed], give_back: Callable[[Claimed], Awaitable[None]]
) -> Claimed:
    """Run ``claim`` (a claiming transaction) on a worker thread; what it claimed.

    Cancelled meanwhile (the server stopping), the claim still commits on its thread. So
    it is waited for, and what it claimed is handed to ``give_back`` before the
    cancellation goes on: no lease outlives a stopped worker. A claim that failed
    claimed nothing, and the cancellation goes on at once.
    """
    claiming = asyncio.ensure_future(asyncio.to_thread(claim))
    try:
        return await asyncio.shield(claiming)
    except asyncio.CancelledError:
        try:
            claimed = await claiming
        except Exception:
            raise asyncio.CancelledError from None
        await give_back(claimed)
        raise


@dataclass(frozen=True, slots=True)
class Settled:
    """A claimed row finished for good, with the audit event that says so."""

    id: int
    status: str
    audit: AuditEvent
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Retried:
    """A claimed row to be tried again at ``at``."""

    id: int
    at: datetime
    error: str


class LeaseQueue:
    """``table`` (``id``, ``status``, ``attempts``, ``next_attempt_at``, ``locked_until``,
    ``finished_at``, ``last_error``) worked as a leased queue.

    ``claimed`` names the columns a claim returns (after ``id``); ``erased`` the columns
    cleared when a row is settled; ``pending_only`` whether settling and retrying touch
    only rows still pending."""

    def __init__(
        self,
        database: Database,
        table: Table,
        *,
        claimed: Sequence[str],
        lease: timedelta,
        erased: Sequence[str] = (),
        pending_only: bool,
    ) -> None:
        self._database = database
        self._table = table
        self._lease = lease
        columns = table.c
        self._claim = (
            update(table)
            .where(columns.id.in_(bindparam("p_ids", expanding=True)), columns.status == "pending")
            .values(locked_until=bindparam("p_until"), attempts=columns.attempts + 1)
            .returning(columns.id, *(columns[name] for name in claimed))
        )
        settling = (columns.id == bindparam("p_id"),) + (
            (columns.status == "pending",) if pending_only else ()
        )
        self._settle = (
            update(table)
            .where(*settling)
            .values(
                status=bindparam("p_status"),
                finished_at=bindparam("p_now"),
                locked_until=None,
                last_error=bindparam("p_error"),
                **dict.fromkeys(erased),
            )
        )
        self._retry = (
            update(table)
            .where(*settling)
            .values(
                next_attempt_at=bindparam("p_at"),
                locked_until=None,
                last_error=bindparam("p_error"),
            )
        )
        self._release = (
            update(table)
            .where(columns.id == bindparam("p_id"), columns.status == "pending")
            .values(locked_until=None, attempts=columns.attempts - 1)
        )

    def claim(
        self,
        now: datetime,
        *,
        limit: int,
        skip: Collection[int] = (),
        look_first: bool = True,
        then: Callable[[SqlRepositories, list[tuple[Any, ...]]], None] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Lease the oldest due rows (at most ``limit``, oldest first), other than those
        in ``skip``, in one transaction: ``id`` then the ``claimed`` columns.

        On SQLite a poll first looks for a due row without the writer lock, so an idle
        queue never takes it; ``look_first=False`` skips that look when a row is known to
        have been queued (a wake-up after its commit), where it was one more transaction
        for nothing. ``then`` is called with the claimed rows (when there are any) in the
        claiming transaction, for reads that belong with the claim."""
        columns = self._table.c
        due = (
            select(columns.id)
            .where(
                columns.status == "pending",
                columns.next_attempt_at <= now,
                or_(columns.locked_until.is_(None), columns.locked_until <= now),
            )
            .order_by(columns.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if skip:
            due = due.where(columns.id.not_in(skip))
        if look_first and self._database.is_sqlite:
            with self._database.reading() as repos:
                found = repos.connection.execute(due.limit(1)).first()
            if found is None:
                return []
        with self._database.transaction() as repos:
            connection = repos.connection
            ids = list(connection.execute(due).scalars())
            if not ids:
                return []
            rows = connection.execute(
                self._claim, {"p_ids": ids, "p_until": now + self._lease}
            ).all()
            claimed = sorted((tuple(row) for row in rows), key=lambda row: int(row[0]))
            if then is not None and claimed:
                then(repos, claimed)
        return claimed

    def finish(
        self,
        *,
        now: datetime,
        settled: Sequence[Settled] = (),
        retries: Sequence[Retried] = (),
        released: Sequence[int] = (),
    ) -> None:
        """What became of a claimed batch, in one transaction: settled rows with their
        audit events, retries, and rows given back unattempted."""
        with self._database.transaction() as repos:
            for settlement in settled:
                repos.connection.execute(
                    self._settle,
                    {
                        "p_id": settlement.id,
                        "p_status": settlement.status,
                        "p_now": now,
                        "p_error": settlement.error[:ERROR_CHARS] if settlement.error else None,
                    },
                )
                repos.audit.append(settlement.audit)
            for retry in retries:
                repos.connection.execute(
                    self._retry,
                    {"p_id": retry.id, "p_at": retry.at, "p_error": retry.error[:ERROR_CHARS]},
                )
            for row_id in released:
                repos.connection.execute(self._release, {"p_id": row_id})

    def release(self, row_id: int) -> None:
        """Give a claimed row back as if it had never been claimed: no lease, and the
        claim's attempt not counted."""
        with self._database.begin() as connection:
            connection.execute(self._release, {"p_id": row_id})

    def counts(self) -> dict[str, int]:
        """How many rows are in each status."""
        with self._database.reading() as repos:
            rows = repos.connection.execute(select(self._table.c.status)).scalars().all()
        result: dict[str, int] = {}
        for status in rows:
            result[status] = result.get(status, 0) + 1
        return result
