"""Removing rows that no longer protect anything: flows that expired (every flow expires
minutes after it starts, so an expired flow is over whatever its state) with their
secrets, ended sessions (a session past its absolute end that nobody noticed is ended
first, queueing its back-channel logouts: ``store/logouts.py``), settled mail and
logout tokens, stale failure counters, recoveries whose hold
(or, unfinished, whose session) ended long ago, operator recovery cases past their
expiry (a used case's session is a recovery of its own by then), old dev mail, and the
OpenID Connect artefacts that can no longer be used: expired authorization requests
(pending and pushed), codes, access token records, client assertion ids (an expired
assertion is refused for its ``exp`` alone) and refresh tokens, and grants whose session
has ended (tokens end with their session, so such a grant backs nothing) or that were
revoked long ago, with their refresh tokens. A spent refresh token of a family still
alive stays: it is what recognises a replay of it (reuse revokes the family).
Transaction confirmations past their expiry go too (pending, confirmed or redeemed,
none can be used), and so do pending email address changes past theirs.

The audit log is never purged here: it is the record of what happened.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, or_, select, update

from sekisho.store.database import Database
from sekisho.store.logouts import SqlLogouts
from sekisho.store.tables import (
    account_recoveries,
    dev_mailbox,
    email_changes,
    failure_counters,
    flows,
    oidc_access_tokens,
    oidc_client_assertions,
    oidc_codes,
    oidc_grants,
    oidc_logout_deliveries,
    oidc_pending_requests,
    oidc_pushed_requests,
    oidc_refresh_tokens,
    onetime_secrets,
    operator_recoveries,
    outbox,
    sessions,
    transaction_confirmations,
)


def purge(
    database: Database, *, before: datetime, failures_before: datetime, now: datetime
) -> dict[str, int]:
    """Delete what ended before ``before`` (failure counters: before ``failures_before``,
    which callers keep outside any lockout still running); return the count per table."""
    expired_flows = select(flows.c.id).where(flows.c.expires_at < before)
    # Evaluated after the sessions are purged (statements run in order, in one transaction).
    grant_ended = or_(
        oidc_grants.c.revoked_at < before,
        oidc_grants.c.session_id.not_in(select(sessions.c.id)),
    )
    ended_grants = select(oidc_grants.c.id).where(grant_ended)
    statements = {
        "onetime_secrets": delete(onetime_secrets).where(
            onetime_secrets.c.flow_id.in_(expired_flows)
        ),
        "flows": delete(flows).where(flows.c.expires_at < before),
        "sessions": delete(sessions).where(
            or_(sessions.c.revoked_at < before, sessions.c.expires_at < before)
        ),
        "oidc_pending_requests": delete(oidc_pending_requests).where(
            oidc_pending_requests.c.expires_at < before
        ),
        "oidc_pushed_requests": delete(oidc_pushed_requests).where(
            oidc_pushed_requests.c.expires_at < before
        ),
        "oidc_client_assertions": delete(oidc_client_assertions).where(
            oidc_client_assertions.c.expires_at < before
        ),
        "oidc_codes": delete(oidc_codes).where(
            or_(oidc_codes.c.expires_at < before, oidc_codes.c.grant_id.in_(ended_grants))
        ),
        "oidc_access_tokens": delete(oidc_access_tokens).where(
            or_(
                oidc_access_tokens.c.expires_at < before,
                oidc_access_tokens.c.grant_id.in_(ended_grants),
            )
        ),
        "oidc_refresh_tokens": delete(oidc_refresh_tokens).where(
            or_(
                oidc_refresh_tokens.c.expires_at < before,
                oidc_refresh_tokens.c.grant_id.in_(ended_grants),
            )
        ),
        "oidc_grants": delete(oidc_grants).where(grant_ended),
        "outbox": delete(outbox).where(outbox.c.status != "pending", outbox.c.finished_at < before),
        "oidc_logout_deliveries": delete(oidc_logout_deliveries).where(
            oidc_logout_deliveries.c.status != "pending",
            oidc_logout_deliveries.c.finished_at < before,
        ),
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
        "transaction_confirmations": delete(transaction_confirmations).where(
            transaction_confirmations.c.expires_at < before
        ),
        "email_changes": delete(email_changes).where(email_changes.c.expires_at < before),
        "operator_recoveries": delete(operator_recoveries).where(
            operator_recoveries.c.expires_at < before
        ),
        "dev_mailbox": delete(dev_mailbox).where(dev_mailbox.c.received_at < before),
    }
    # Sessions past their absolute end that nobody noticed end now, at the moment they
    # expired, and their relying parties are told (before any row is deleted).
    unnoticed = (
        update(sessions)
        .where(sessions.c.revoked_at.is_(None), sessions.c.expires_at <= now)
        .values(revoked_at=sessions.c.expires_at, revoked_reason="expired")
        .returning(sessions.c.id)
    )
    with database.begin() as connection:
        ended = list(connection.execute(unnoticed).scalars())
        SqlLogouts(connection).enqueue(ended, reason="expired", now=now)
        return {
            name: connection.execute(statement).rowcount for name, statement in statements.items()
        }
