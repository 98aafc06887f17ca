"""Audit events about an OIDC grant, the counterpart of
:func:`sekisho.core.sessions.session_event` for what a client does with a grant.

Invariant: an event about a grant records the person and session the grant was issued
for and the ``amr`` frozen in it (never the AAL of a session that may have moved on);
what the event adds (the client, the grant's ``acr``, a reason) is its ``detail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sekisho.core.clients import ClientInfo
from sekisho.core.records import AuditEvent
from sekisho.oidc.records import Grant


def grant_event(
    event: str,
    grant: Grant | None,
    client: ClientInfo,
    now: datetime,
    *,
    outcome: str = "success",
    detail: Mapping[str, object] | None = None,
) -> AuditEvent:
    """An audit event about ``grant`` (its user, session and ``amr``; none of them when
    the grant is not known), from ``client``."""
    return AuditEvent(
        event=event,
        outcome=outcome,
        at=now,
        ip=client.ip,
        user_agent=client.user_agent,
        user_id=grant.user_id if grant else None,
        session_id=grant.session_id if grant else None,
        amr=grant.amr if grant else (),
        detail=dict(detail or {}),
    )
