"""What the metrics read from the database at scrape time: the mail queue.

Read from the table, not counted in a process, so every instance reports the same
numbers whichever process queued or delivered the mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select

from sekisho.store.tables import outbox


@dataclass(frozen=True, slots=True)
class MailQueue:
    by_status: dict[str, int]
    retrying: int  # pending messages with at least one failed attempt
    oldest_pending_at: datetime | None


def mail_queue(engine: Engine) -> MailQueue:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                outbox.c.status,
                func.count(),
                func.sum(case((outbox.c.attempts > 0, 1), else_=0)),
                func.min(outbox.c.created_at),
            ).group_by(outbox.c.status)
        ).all()
    by_status = {status: int(count) for status, count, _retrying, _oldest in rows}
    pending = [row for row in rows if row[0] == "pending"]
    return MailQueue(
        by_status=by_status,
        retrying=int(pending[0][2] or 0) if pending else 0,
        oldest_pending_at=pending[0][3] if pending else None,
    )
