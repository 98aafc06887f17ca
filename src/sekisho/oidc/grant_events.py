"""Audit events about an OIDC grant, the counterpart of
:func:`sekisho.core.sessions.session_event` for what a client does with a grant.

Invariant: an event about a grant records the person and session the grant was issued
for and the ``amr`` frozen in it (never the AAL of a session that may have moved on);
what the event adds (the client, the grant's ``acr``, a reason) is its ``detail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from sekisho.core.clients import ClientInfo
from sekisho.core.records import AuditEvent
from sekisho.core.sessions import session_event
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
    the grant is not known), from ``client``: session_event's, done by no session, with
    the grant's facts in place of a session's."""
    made = session_event(event, None, client, now, outcome=outcome, detail=detail)
    if grant is None:
        return made
    return replace(made, user_id=grant.user_id, session_id=grant.session_id, amr=grant.amr)
