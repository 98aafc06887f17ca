"""Server-side sessions (NIST SP 800-63B-4 §5, OWASP ASVS V7).

Invariants:
- the cookie carries a 256-bit random token; only its keyed hash is stored;
- a session is created only by :mod:`sekisho.core.completion`, with the AAL of the
  proof that made it, never more;
- a session past its idle or absolute timeout, or revoked, is refused on every
  instance at once (the check reads the shared database on every request).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sekisho.core.clients import ClientInfo
from sekisho.core.keys import Keyring
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, Session

TOKEN_PURPOSE = "session"  # noqa: S105 (a key label, not a secret)
TOUCH_GRANULARITY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    """Idle and absolute limits by assurance level (NIST SP 800-63B-4 §2.1.3 / §2.2.3 /
    §2.3.3: AAL1 at most 30 days overall; AAL2 at most 1 hour idle and 24 hours overall;
    AAL3 at most 15 minutes idle and 12 hours overall). A tier may set tighter limits;
    a session keeps the idle limit it was issued with."""

    idle_aal1: timedelta
    absolute_aal1: timedelta
    idle_aal2: timedelta
    absolute_aal2: timedelta
    idle_aal3: timedelta
    absolute_aal3: timedelta

    def idle(self, aal: int) -> timedelta:
        return (self.idle_aal1, self.idle_aal2, self.idle_aal3)[min(max(aal, 1), 3) - 1]

    def absolute(self, aal: int) -> timedelta:
        return (self.absolute_aal1, self.absolute_aal2, self.absolute_aal3)[min(max(aal, 1), 3) - 1]

    def idle_of(self, session: Session) -> timedelta:
        """The session's own idle limit when it was issued with one, else its AAL's."""
        by_level = self.idle(session.aal)
        return min(by_level, session.idle_limit) if session.idle_limit else by_level


class SessionManager:
    def __init__(self, *, keys: Keyring, timeouts: SessionTimeouts) -> None:
        self._keys = keys
        self.timeouts = timeouts

    def token_digest(self, token: str) -> str:
        return self._keys.digest(TOKEN_PURPOSE, token)

    def current(self, repos: Repositories, token: str | None, *, now: datetime) -> Session | None:
        """The live session for a cookie value, refreshing its idle clock; else None."""
        if not token:
            return None
        session = repos.sessions.by_token(self.token_digest(token))
        if session is None:
            return None
        if now >= session.expires_at or now - session.last_seen_at >= self.timeouts.idle_of(
            session
        ):
            if repos.sessions.revoke(session.id, reason="timeout", now=now):
                _audit(repos, "session.timed_out", session, ClientInfo.of(None, None), now)
            return None
        if now - session.last_seen_at >= TOUCH_GRANULARITY:
            repos.sessions.touch(session.id, now=now)
        return session

    def sign_out(
        self, repos: Repositories, session: Session, *, client: ClientInfo, now: datetime
    ) -> None:
        repos.sessions.revoke(session.id, reason="sign_out", now=now)
        _audit(repos, "session.signed_out", session, client, now)

    def revoke_others(
        self, repos: Repositories, session: Session, *, client: ClientInfo, now: datetime
    ) -> int:
        count = repos.sessions.revoke_others(session.user_id, keep=session.id, now=now)
        _audit(repos, "session.revoked_others", session, client, now, revoked=count)
        return count

    def revoke_one(
        self,
        repos: Repositories,
        session: Session,
        target_id: str,
        *,
        client: ClientInfo,
        now: datetime,
    ) -> bool:
        """Revoke one of the same user's sessions (never another user's)."""
        owned = {s.id for s in repos.sessions.active_for(session.user_id)}
        if target_id not in owned:
            return False
        repos.sessions.revoke(target_id, reason="revoked_by_user", now=now)
        _audit(repos, "session.revoked", session, client, now, revoked_session=target_id)
        return True


def session_event(
    event: str,
    session: Session | None,
    client: ClientInfo,
    now: datetime,
    *,
    outcome: str = "success",
    detail: Mapping[str, object] | None = None,
) -> AuditEvent:
    """An audit event done by ``session``: its user, id, amr and AAL (none of them when
    no one is signed in), from ``client``."""
    return AuditEvent(
        event=event,
        outcome=outcome,
        at=now,
        ip=client.ip,
        user_agent=client.user_agent,
        user_id=session.user_id if session else None,
        session_id=session.id if session else None,
        amr=session.amr if session else (),
        aal=session.aal if session else None,
        detail=dict(detail or {}),
    )


def _audit(
    repos: Repositories,
    event: str,
    session: Session,
    client: ClientInfo,
    now: datetime,
    **detail: object,
) -> None:
    repos.audit.append(session_event(event, session, client, now, detail=detail))
