"""Queueing back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.7).

Invariant: a delivery is queued by the very transaction that ends the Sekisho session:
every statement that sets ``sessions.revoked_at``, or deletes a session that had not
ended, calls :meth:`SqlLogouts.enqueue` on the same connection. One delivery per client
that received a grant from that session and has a ``backchannel_logout_uri``. The token
is signed at delivery (``oidc/backchannel.py``) with the ``jti`` fixed here, so every
retry carries the same identifier. The worker's side is ``store/logout_queue.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from sekisho.store.tables import oidc_clients, oidc_grants, oidc_logout_deliveries

_QUEUE = oidc_logout_deliveries


class SqlLogouts:
    """The enqueueing side, on the connection of the transaction that ends sessions."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection
        #: A delivery was queued in this transaction (the worker is woken after commit).
        self.enqueued = False

    def enqueue(self, session_ids: Collection[str], *, reason: str, now: datetime) -> int:
        """Queue one logout token per (client with a back-channel URI, session) among
        the grants of ``session_ids``; how many were queued."""
        if not session_ids:
            return 0
        found = self._c.execute(
            select(oidc_grants.c.client_id, oidc_grants.c.user_id, oidc_grants.c.session_id)
            .join(oidc_clients, oidc_clients.c.id == oidc_grants.c.client_id)
            .where(
                oidc_grants.c.session_id.in_(list(session_ids)),
                oidc_clients.c.backchannel_logout_uri.is_not(None),
            )
            .distinct()
        ).all()
        rows = [
            {
                "client_id": row.client_id,
                "user_id": row.user_id,
                "session_id": row.session_id,
                "jti": secrets.token_urlsafe(24),
                "reason": reason[:32],
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
            for row in sorted(found, key=lambda row: (row.session_id, row.client_id))
        ]
        if rows:
            self._c.execute(insert(_QUEUE), rows)
            self.enqueued = True
        return len(rows)
