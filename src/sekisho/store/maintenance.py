"""Removing rows that no longer protect anything: flows that expired (every flow expires
minutes after it starts, so an expired flow is over whatever its state) with their
secrets, ended sessions, settled mail, stale failure counters, recoveries whose hold
(or, unfinished, whose session) ended long ago, and old dev mail.

The audit log is never purged here: it is the record of what happened.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, or_, select

from sekisho.store.database import Database
from sekisho.store.tables import (
    account_recoveries,
    dev_mailbox,
    failure_counters,
    flows,
    onetime_secrets,
    outbox,
    sessions,
)


def purge(database: Database, *, before: datetime, failures_before: datetime) -> dict[str, int]:
    """Delete what ended before ``before`` (failure counters: before ``failures_before``,
    which callers keep outside any lockout still running); return the count per table."""
    expired_flows = select(flows.c.id).where(flows.c.expires_at < before)
    statements = {
        "onetime_secrets": delete(onetime_secrets).where(
            onetime_secrets.c.flow_id.in_(expired_flows)
        ),
        "flows": delete(flows).where(flows.c.expires_at < before),
        "sessions": delete(sessions).where(
            or_(sessions.c.revoked_at < before, sessions.c.expires_at < before)
        ),
        "outbox": delete(outbox).where(outbox.c.status != "pending", outbox.c.finished_at < before),
        "failure_counters": delete(failure_counters).where(
            failure_counters.c.last_failure_at < failures_before
        ),
        "account_recoveries": delete(account_recoveries).where(
            or_(
                account_recoveries.c.hold_until < before,
                and_(
                    account_recoveries.c.completed_at.is_(None),
                    account_recoveries.c.started_at < before,
                ),
            )
        ),
        "dev_mailbox": delete(dev_mailbox).where(dev_mailbox.c.received_at < before),
    }
    with database.engine.begin() as connection:
        return {
            name: connection.execute(statement).rowcount for name, statement in statements.items()
        }
