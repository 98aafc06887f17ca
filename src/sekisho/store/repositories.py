"""Repositories over one SQLAlchemy connection (one transaction).

Invariant: every spend, count or state change is one ``UPDATE ... WHERE ... RETURNING``
statement, so exactly one of any number of concurrent callers wins (SECURITY.md cases
3 and 13), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from sekisho.core.audit_chain import AuditSeal
from sekisho.core.encoding import base64url, bytes_from_base64url
from sekisho.core.records import (
    AuditEvent,
    CodeAttempt,
    FailureCount,
    Flow,
    FlowState,
    Passkey,
    Session,
    StoredPassword,
    User,
)
from sekisho.store import audit_chain
from sekisho.store.applied_policy import SqlAppliedPolicy
from sekisho.store.devices import SqlKnownDevices
from sekisho.store.logouts import SqlLogouts
from sekisho.store.operator_recovery import SqlOperatorRecoveries
from sekisho.store.prepared import Prepared
from sekisho.store.recovery import SqlRecoveries, SqlRecoveryCodes
from sekisho.store.tables import (
    account_recoveries,
    audit_events,
    failure_counters,
    flows,
    onetime_secrets,
    passkeys,
    passwords,
    sessions,
    users,
)
from sekisho.store.tables import (
    outbox as outbox_table,
)

# Statements of the sign-in paths, built once (building one costs more than running it on
# SQLite); values travel as bound parameters. ``p_``-names keep them apart from the
# columns an UPDATE sets.
_USER_BY_EMAIL = Prepared(select(users).where(users.c.email == bindparam("p_email")))
_USER_BY_ID = Prepared(select(users).where(users.c.id == bindparam("p_id")))
_RUNNING_HOLD = (
    select(func.max(account_recoveries.c.hold_until))
    .where(
        account_recoveries.c.user_id == users.c.id,
        account_recoveries.c.hold_until > bindparam("p_now"),
    )
    .scalar_subquery()
)
_USER_BY_ID_AND_HOLD = Prepared(
    select(users, _RUNNING_HOLD.label("running_hold")).where(users.c.id == bindparam("p_id"))
)
_USER_INSERT = Prepared(
    insert(users),
    keys=("id", "email", "status", "display_name", "created_at", "email_verified_at"),
)
_USER_SIGNED_IN = Prepared(
    update(users)
    .where(users.c.id == bindparam("p_id"))
    .values(last_sign_in_at=bindparam("p_now"), locale=bindparam("p_locale"))
)
_USER_EMAIL_PROVEN = Prepared(
    update(users)
    .where(users.c.id == bindparam("p_id"), users.c.email_verified_at.is_(None))
    .values(email_verified_at=bindparam("p_now"))
)
_FLOW_INSERT = Prepared(
    insert(flows),
    keys=(
        "id",
        "kind",
        "state",
        "email",
        "binding_digest",
        "approval_number",
        "requested_ip",
        "requested_user_agent",
        "locale",
        "created_at",
        "expires_at",
    ),
)
_FLOW_GET = Prepared(select(flows).where(flows.c.id == bindparam("p_id")))
_FLOW_SUPERSEDE = Prepared(
    update(flows)
    .where(
        flows.c.email == bindparam("p_email"),
        flows.c.kind == bindparam("p_kind"),
        # two comparisons, not ``in_``: an expanding IN is rendered per execution
        or_(flows.c.state == FlowState.PENDING, flows.c.state == FlowState.APPROVED),
    )
    .values(state=FlowState.SUPERSEDED, finished_at=bindparam("p_now"))
    .returning(flows.c.id)
)
_FLOW_TRANSITION = Prepared(
    update(flows)
    .where(
        flows.c.id == bindparam("p_id"),
        flows.c.state == bindparam("p_from"),
        flows.c.expires_at > bindparam("p_now"),
    )
    .values(state=bindparam("p_to"), finished_at=bindparam("p_now"))
    .returning(flows.c.id)
)
_SECRET_INSERT = Prepared(
    insert(onetime_secrets),
    keys=("flow_id", "purpose", "kind", "digest", "attempts", "max_attempts", "expires_at"),
)
_SECRET_LIVE = (
    onetime_secrets.c.digest == bindparam("p_digest"),
    onetime_secrets.c.purpose == bindparam("p_purpose"),
    onetime_secrets.c.kind == bindparam("p_kind"),
    onetime_secrets.c.spent_at.is_(None),
    onetime_secrets.c.expires_at > bindparam("p_now"),
)
_SECRET_FIND_LIVE = Prepared(select(onetime_secrets.c.flow_id).where(*_SECRET_LIVE))
_SECRET_CONSUME_LIVE = Prepared(
    update(onetime_secrets)
    .where(*_SECRET_LIVE)
    .values(
        spent_at=bindparam("p_now"),
        spent_reason="used",
        attempts=onetime_secrets.c.attempts + 1,
    )
    .returning(onetime_secrets.c.flow_id)
)
_SECRET_TAKE_CODE_ATTEMPT = Prepared(
    update(onetime_secrets)
    .where(
        onetime_secrets.c.flow_id == bindparam("p_flow_id"),
        onetime_secrets.c.purpose == bindparam("p_purpose"),
        onetime_secrets.c.kind == "code",
        onetime_secrets.c.spent_at.is_(None),
        onetime_secrets.c.expires_at > bindparam("p_now"),
        onetime_secrets.c.attempts < onetime_secrets.c.max_attempts,
    )
    .values(attempts=onetime_secrets.c.attempts + 1)
    .returning(
        onetime_secrets.c.id,
        onetime_secrets.c.digest,
        onetime_secrets.c.attempts,
        onetime_secrets.c.max_attempts,
    )
)
_SECRET_CONSUME = Prepared(
    update(onetime_secrets)
    .where(onetime_secrets.c.id == bindparam("p_id"), onetime_secrets.c.spent_at.is_(None))
    .values(spent_at=bindparam("p_now"), spent_reason=bindparam("p_reason"))
    .returning(onetime_secrets.c.id)
)
_SECRET_SPEND_FLOW = Prepared(
    update(onetime_secrets)
    .where(
        onetime_secrets.c.flow_id == bindparam("p_flow_id"), onetime_secrets.c.spent_at.is_(None)
    )
    .values(spent_at=bindparam("p_now"), spent_reason=bindparam("p_reason"))
)
_SESSION_INSERT = Prepared(
    insert(sessions),
    keys=(
        "id",
        "token_digest",
        "user_id",
        "created_at",
        "last_seen_at",
        "auth_time",
        "expires_at",
        "ip",
        "user_agent",
        "amr",
        "aal",
        "restriction",
        "idle_seconds",
    ),
)
_SESSION_BY_TOKEN = Prepared(
    select(sessions)
    .join(users, users.c.id == sessions.c.user_id)
    .where(
        sessions.c.token_digest == bindparam("p_digest"),
        sessions.c.revoked_at.is_(None),
        users.c.status == "active",
    )
)
_OUTBOX_INSERT = Prepared(
    insert(outbox_table),
    keys=("kind", "sealed_payload", "status", "attempts", "created_at", "next_attempt_at"),
)
_PASSKEY_BY_CREDENTIAL = Prepared(
    select(passkeys).where(passkeys.c.credential_id == bindparam("p_credential_id"))
)
_PASSKEY_RECORD_USE = Prepared(
    update(passkeys)
    .where(passkeys.c.id == bindparam("p_id"))
    .values(
        sign_count=bindparam("p_sign_count"),
        backup_state=bindparam("p_backup_state"),
        last_used_at=bindparam("p_now"),
    )
)


_FAILURES_OF = (
    failure_counters.c.subject == bindparam("p_subject"),
    failure_counters.c.method == bindparam("p_method"),
)
_FAILURES_GET = Prepared(
    select(failure_counters.c.consecutive, failure_counters.c.last_failure_at).where(*_FAILURES_OF)
)
_FAILURES_RESET = Prepared(delete(failure_counters).where(*_FAILURES_OF))
_SESSION_TOUCH = Prepared(
    update(sessions)
    .where(sessions.c.id == bindparam("p_id"))
    .values(last_seen_at=bindparam("p_now"))
)


def _failure_record(insert_: Any) -> Prepared:
    """One dialect's upsert of a failure counter: the first failure inserts 1, each next
    one adds 1 in the same statement, so concurrent failures are all counted."""
    statement = insert_(failure_counters)
    return Prepared(
        statement.on_conflict_do_update(
            index_elements=[failure_counters.c.subject, failure_counters.c.method],
            set_={
                "consecutive": failure_counters.c.consecutive + 1,
                "last_failure_at": statement.excluded.last_failure_at,
            },
        ).returning(failure_counters.c.consecutive),
        keys=("subject", "method", "consecutive", "last_failure_at"),
    )


def _passkey_add(insert_: Any) -> Prepared:
    """One dialect's insert of a passkey that inserts nothing when its credential id is
    already registered (``RETURNING`` then returns no row)."""
    return Prepared(
        insert_(passkeys)
        .on_conflict_do_nothing(index_elements=[passkeys.c.credential_id])
        .returning(passkeys.c.id),
        keys=(
            "id",
            "user_id",
            "credential_id",
            "public_key",
            "sign_count",
            "transports",
            "aaguid",
            "backup_eligible",
            "backup_state",
            "user_verified",
            "attestation_format",
            "name",
            "created_at",
            "attestation_trusted",
        ),
    )


# ``ON CONFLICT`` is each dialect's own construct: one statement per dialect name.
_FAILURES_RECORD = {
    "postgresql": _failure_record(postgresql.insert),
    "sqlite": _failure_record(sqlite.insert),
}
_PASSKEY_ADD = {
    "postgresql": _passkey_add(postgresql.insert),
    "sqlite": _passkey_add(sqlite.insert),
}
_ADVISORY_LOCK = Prepared(text("SELECT pg_advisory_xact_lock(hashtextextended(:p_key, 0))"))

#: A row by column name: SQLAlchemy's, or a prepared statement's (``Prepared.mapping``).
_Row = Mapping[str, Any] | RowMapping


def _user(row: _Row) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        status=row["status"],
        created_at=row["created_at"],
        email_verified_at=row["email_verified_at"],
        display_name=row["display_name"],
        last_sign_in_at=row["last_sign_in_at"],
        webauthn_handle=row["webauthn_handle"],
        attributes=json.loads(row["attributes"] or "{}"),
        migration_mode=row["migration_mode"],
        imported_at=row["imported_at"],
        password_retired_at=row["password_retired_at"],
        tier=row["tier"],
        locale=row["locale"],
    )


def _session(row: _Row) -> Session:
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        auth_time=row["auth_time"],
        expires_at=row["expires_at"],
        ip=row["ip"],
        user_agent=row["user_agent"],
        amr=tuple(row["amr"].split()),
        aal=row["aal"],
        restriction=row["restriction"],
        idle_limit=(
            timedelta(seconds=row["idle_seconds"]) if row["idle_seconds"] is not None else None
        ),
    )


class SqlUsers:
    def __init__(self, connection: Connection, logouts: SqlLogouts) -> None:
        self._c = connection
        self._logouts = logouts

    def by_email(self, email: str) -> User | None:
        row = _USER_BY_EMAIL.mapping(self._c, {"p_email": email})
        return _user(row) if row else None

    def by_id(self, user_id: str) -> User | None:
        row = _USER_BY_ID.mapping(self._c, {"p_id": user_id})
        return _user(row) if row else None

    def by_id_and_hold(self, user_id: str, *, now: datetime) -> tuple[User | None, datetime | None]:
        """The user and the end of their latest recovery hold still running at ``now``
        (:meth:`SqlRecoveries.hold_until`), in one statement: a step-up confirmation
        reads both in each of its steps (SECURITY.md case 54)."""
        row = _USER_BY_ID_AND_HOLD.mapping(self._c, {"p_id": user_id, "p_now": now})
        if row is None:
            return None, None
        hold: datetime | None = row["running_hold"]
        return _user(row), hold

    def create(
        self, email: str, *, now: datetime, verified: bool, display_name: str | None = None
    ) -> User:
        user = User(
            id=uuid.uuid4().hex,
            email=email,
            status="active",
            created_at=now,
            email_verified_at=now if verified else None,
            display_name=display_name,
        )
        _USER_INSERT.run(
            self._c,
            {
                "id": user.id,
                "email": user.email,
                "status": user.status,
                "display_name": display_name,
                "created_at": now,
                "email_verified_at": user.email_verified_at,
            },
        )
        return user

    def mark_signed_in(
        self, user_id: str, *, now: datetime, email_proven: bool, locale: str
    ) -> None:
        _USER_SIGNED_IN.run(self._c, {"p_id": user_id, "p_now": now, "p_locale": locale})
        if email_proven:
            _USER_EMAIL_PROVEN.run(self._c, {"p_id": user_id, "p_now": now})

    def set_status(self, email: str, status: str, *, now: datetime) -> bool:
        row = self._c.execute(
            update(users).where(users.c.email == email).values(status=status).returning(users.c.id)
        ).first()
        if row is None:
            return False
        if status != "active":
            ended = self._c.execute(
                update(sessions)
                .where(sessions.c.user_id == row[0], sessions.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason="account_" + status)
                .returning(sessions.c.id)
            ).scalars()
            self._logouts.enqueue(list(ended), reason="account_" + status, now=now)
        return True

    def all(self) -> Iterator[User]:
        for row in self._c.execute(select(users).order_by(users.c.created_at)).mappings():
            yield _user(row)

    def ensure_webauthn_handle(self, user_id: str, candidate: str) -> str:
        self._c.execute(
            update(users)
            .where(users.c.id == user_id, users.c.webauthn_handle.is_(None))
            .values(webauthn_handle=candidate)
        )
        handle = self._c.execute(
            select(users.c.webauthn_handle).where(users.c.id == user_id)
        ).scalar_one()
        return str(handle)

    def save_imported(self, user: User) -> str:
        current = self.by_id(user.id)
        values = {
            "email": user.email,
            "display_name": user.display_name,
            "email_verified_at": user.email_verified_at,
            "attributes": json.dumps(user.attributes, sort_keys=True),
            "migration_mode": user.migration_mode,
        }
        if current is None:
            self._c.execute(
                insert(users).values(
                    id=user.id,
                    status="active",
                    created_at=user.created_at,
                    imported_at=user.imported_at,
                    **values,
                )
            )
            return "created"
        same = (
            current.email == user.email
            and current.display_name == user.display_name
            and not (user.email_verified_at is not None and current.email_verified_at is None)
            and current.attributes == user.attributes
            and current.migration_mode == user.migration_mode
        )
        if same:
            return "unchanged"
        if current.email_verified_at is not None:
            values["email_verified_at"] = current.email_verified_at
        self._c.execute(update(users).where(users.c.id == user.id).values(**values))
        return "updated"

    def retire_password(self, user_id: str, *, now: datetime) -> None:
        self._c.execute(
            update(users)
            .where(users.c.id == user_id, users.c.password_retired_at.is_(None))
            .values(password_retired_at=now)
        )

    def set_tier(self, user_id: str, tier: str | None) -> None:
        self._c.execute(update(users).where(users.c.id == user_id).values(tier=tier))

    def tier_counts(self) -> dict[str, int]:
        rows = self._c.execute(
            select(users.c.tier, func.count())
            .where(users.c.tier.is_not(None))
            .group_by(users.c.tier)
        )
        return {str(tier): int(count) for tier, count in rows}

    def set_attributes(self, user_id: str, attributes: dict[str, Any]) -> None:
        self._c.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(attributes=json.dumps(attributes, sort_keys=True))
        )

    def by_webauthn_handle(self, handle: str) -> User | None:
        row = (
            self._c.execute(select(users).where(users.c.webauthn_handle == handle))
            .mappings()
            .first()
        )
        return _user(row) if row else None


class SqlFlows:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def create(self, flow: Flow) -> None:
        _FLOW_INSERT.run(
            self._c,
            {
                "id": flow.id,
                "kind": flow.kind,
                "state": flow.state,
                "email": flow.email,
                "binding_digest": flow.binding_digest,
                "approval_number": flow.approval_number,
                "requested_ip": flow.requested_ip,
                "requested_user_agent": flow.requested_user_agent,
                "locale": flow.locale,
                "created_at": flow.created_at,
                "expires_at": flow.expires_at,
            },
        )

    def get(self, flow_id: str) -> Flow | None:
        row = _FLOW_GET.mapping(self._c, {"p_id": flow_id})
        if row is None:
            return None
        return Flow(
            id=row["id"],
            kind=row["kind"],
            state=row["state"],
            email=row["email"],
            binding_digest=row["binding_digest"],
            approval_number=row["approval_number"],
            requested_ip=row["requested_ip"],
            requested_user_agent=row["requested_user_agent"],
            locale=row["locale"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )

    def supersede_pending(self, email: str, kind: str, *, now: datetime) -> list[str]:
        rows = _FLOW_SUPERSEDE.all(self._c, {"p_email": email, "p_kind": kind, "p_now": now})
        return [row[0] for row in rows]

    def transition(self, flow_id: str, *, from_state: str, to_state: str, now: datetime) -> bool:
        row = _FLOW_TRANSITION.first(
            self._c, {"p_id": flow_id, "p_from": from_state, "p_to": to_state, "p_now": now}
        )
        return row is not None


class SqlSecrets:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(
        self,
        *,
        flow_id: str,
        purpose: str,
        kind: str,
        digest: str,
        max_attempts: int,
        expires_at: datetime,
    ) -> None:
        _SECRET_INSERT.run(
            self._c,
            {
                "flow_id": flow_id,
                "purpose": purpose,
                "kind": kind,
                "digest": digest,
                "attempts": 0,
                "max_attempts": max_attempts,
                "expires_at": expires_at,
            },
        )

    def find_live(self, *, purpose: str, kind: str, digest: str, now: datetime) -> str | None:
        live = {"p_digest": digest, "p_purpose": purpose, "p_kind": kind, "p_now": now}
        row = _SECRET_FIND_LIVE.first(self._c, live)
        return str(row[0]) if row else None

    def consume_live(self, *, purpose: str, kind: str, digest: str, now: datetime) -> str | None:
        live = {"p_digest": digest, "p_purpose": purpose, "p_kind": kind, "p_now": now}
        row = _SECRET_CONSUME_LIVE.first(self._c, live)
        return str(row[0]) if row else None

    def take_code_attempt(self, *, flow_id: str, purpose: str, now: datetime) -> CodeAttempt | None:
        row = _SECRET_TAKE_CODE_ATTEMPT.first(
            self._c, {"p_flow_id": flow_id, "p_purpose": purpose, "p_now": now}
        )
        if row is None:
            return None
        return CodeAttempt(secret_id=row[0], digest=row[1], attempts=row[2], max_attempts=row[3])

    def consume(self, secret_id: int, *, reason: str, now: datetime) -> bool:
        row = _SECRET_CONSUME.first(self._c, {"p_id": secret_id, "p_now": now, "p_reason": reason})
        return row is not None

    def spend_flow(self, flow_id: str, *, reason: str, now: datetime) -> None:
        _SECRET_SPEND_FLOW.run(self._c, {"p_flow_id": flow_id, "p_now": now, "p_reason": reason})


class SqlFailureCounters:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get(self, subject: str, method: str) -> FailureCount | None:
        row = _FAILURES_GET.first(self._c, {"p_subject": subject, "p_method": method})
        return FailureCount(row[0], row[1]) if row else None

    def record_failure(self, subject: str, method: str, *, now: datetime) -> int:
        row = _FAILURES_RECORD[self._c.dialect.name].first(
            self._c,
            {"subject": subject, "method": method, "consecutive": 1, "last_failure_at": now},
        )
        if row is None:
            raise RuntimeError("the failure counter upsert returned no row")
        return int(row[0])

    def reset(self, subject: str, method: str) -> None:
        _FAILURES_RESET.run(self._c, {"p_subject": subject, "p_method": method})


class SqlSessions:
    """Every way a session ends queues its back-channel logouts in the same
    transaction (``store/logouts.py``)."""

    def __init__(self, connection: Connection, logouts: SqlLogouts) -> None:
        self._c = connection
        self._logouts = logouts

    def create(self, session: Session, *, token_digest: str) -> None:
        _SESSION_INSERT.run(
            self._c,
            {
                "id": session.id,
                "token_digest": token_digest,
                "user_id": session.user_id,
                "created_at": session.created_at,
                "last_seen_at": session.last_seen_at,
                "auth_time": session.auth_time,
                "expires_at": session.expires_at,
                "ip": session.ip,
                "user_agent": session.user_agent,
                "amr": " ".join(session.amr),
                "aal": session.aal,
                "restriction": session.restriction,
                "idle_seconds": (
                    int(session.idle_limit.total_seconds()) if session.idle_limit else None
                ),
            },
        )

    def by_token(self, token_digest: str) -> Session | None:
        row = _SESSION_BY_TOKEN.mapping(self._c, {"p_digest": token_digest})
        return _session(row) if row else None

    def touch(self, session_id: str, *, now: datetime) -> None:
        _SESSION_TOUCH.run(self._c, {"p_id": session_id, "p_now": now})

    def revoke(self, session_id: str, *, reason: str, now: datetime) -> bool:
        row = self._c.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .returning(sessions.c.id)
        ).first()
        if row is None:
            return False
        self._logouts.enqueue([session_id], reason=reason, now=now)
        return True

    def revoke_others(self, user_id: str, *, keep: str, now: datetime) -> int:
        result = self._c.execute(
            update(sessions)
            .where(
                sessions.c.user_id == user_id,
                sessions.c.id != keep,
                sessions.c.revoked_at.is_(None),
            )
            .values(revoked_at=now, revoked_reason="revoked_others")
            .returning(sessions.c.id)
        )
        ended = list(result.scalars())
        self._logouts.enqueue(ended, reason="revoked_others", now=now)
        return len(ended)

    def users_signed_in(self, *, now: datetime) -> list[str]:
        """The accounts that hold an unrestricted session not yet past its absolute end."""
        rows = self._c.execute(
            select(sessions.c.user_id)
            .where(
                sessions.c.revoked_at.is_(None),
                sessions.c.restriction.is_(None),
                sessions.c.expires_at > now,
            )
            .distinct()
            .order_by(sessions.c.user_id)
        )
        return list(rows.scalars())

    def active_for(self, user_id: str) -> list[Session]:
        rows = self._c.execute(
            select(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .order_by(sessions.c.created_at.desc())
        ).mappings()
        return [_session(row) for row in rows]


def _stored_event(event: AuditEvent) -> dict[str, Any]:
    """The column values of an audit event, exactly as stored and sealed."""
    return {
        "at": event.at,
        "event": event.event,
        "outcome": event.outcome,
        "user_id": event.user_id,
        "email": event.email,
        "session_id": event.session_id,
        "flow_id": event.flow_id,
        "ip": event.ip,
        "user_agent": (event.user_agent or "")[:512],
        "amr": " ".join(event.amr),
        "aal": event.aal,
        "detail": json.dumps(event.detail, sort_keys=True),
        "request_id": event.request_id,
    }


class SqlAudit:
    """Events wait in the transaction until ``flush`` seals them onto the audit chain,
    just before the commit (``Database.transaction``), so the chain head is the last
    lock a transaction takes (``sekisho.store.audit_chain``)."""

    def __init__(
        self,
        connection: Connection,
        seal: AuditSeal,
        anchors: audit_chain.Anchors | None = None,
        known: audit_chain.KnownHead | None = None,
    ) -> None:
        self._c = connection
        self._seal = seal
        self._anchors = anchors
        self._known = known
        self._pending: list[dict[str, Any]] = []

    def append(self, event: AuditEvent) -> None:
        self._pending.append(_stored_event(event))

    def record_outside_chain(self, event: AuditEvent) -> None:
        """Write ``deployment.key_refused`` unsealed: the process refused does not hold
        the deployment's key, so it cannot seal (``verify`` counts such rows apart)."""
        self._c.execute(insert(audit_events).values(**_stored_event(event)))

    def flush(self) -> list[dict[str, Any]]:
        """Seal the waiting events onto the chain; returns them (as stored)."""
        written, self._pending = self._pending, []
        if written:
            audit_chain.append(self._c, self._seal, written, self._anchors, self._known)
        return written

    def flush_adoption(self) -> None:
        """Seal the waiting key adoption, opening the new key's segment in every chain."""
        written, self._pending = self._pending, []
        audit_chain.adopt(self._c, self._seal, written)

    def recent(
        self,
        user_id: str,
        email: str,
        limit: int,
        events: Collection[str] | None = None,
        since: datetime | None = None,
    ) -> list[AuditEvent]:
        """The newest ``limit`` events of the account: its own, and those that name only
        its address (requests for it, from ``since``, the account's creation, on: an
        address given up by an earlier account never brings that account's events).
        Only those named in ``events`` when given (before the limit, so other events
        never push them off)."""
        t = audit_events
        about_address = and_(t.c.user_id.is_(None), t.c.email == email)
        if since is not None:
            about_address = and_(about_address, t.c.at >= since)
        query = select(t).where(or_(t.c.user_id == user_id, about_address))
        if events is not None:
            query = query.where(t.c.event.in_(sorted(events)))
        rows = self._c.execute(query.order_by(t.c.id.desc()).limit(limit)).mappings()
        return [
            AuditEvent(
                event=row["event"],
                outcome=row["outcome"],
                at=row["at"],
                ip=row["ip"],
                user_agent=row["user_agent"],
                user_id=row["user_id"],
                email=row["email"],
                session_id=row["session_id"],
                flow_id=row["flow_id"],
                amr=tuple(row["amr"].split()),
                aal=row["aal"],
                detail=json.loads(row["detail"]),
            )
            for row in rows
        ]


class SqlOutbox:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        #: A message was queued in this transaction (the mail worker is woken after commit).
        self.enqueued = False

    def enqueue(self, *, kind: str, sealed_payload: str, now: datetime) -> None:
        self.enqueued = True
        _OUTBOX_INSERT.run(
            self._c,
            {
                "kind": kind,
                "sealed_payload": sealed_payload,
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            },
        )


def _passkey(row: _Row) -> Passkey:
    return Passkey(
        id=row["id"],
        user_id=row["user_id"],
        credential_id=bytes_from_base64url(row["credential_id"]),
        public_key=bytes(row["public_key"]),
        sign_count=int(row["sign_count"]),
        transports=tuple(json.loads(row["transports"])),
        aaguid=row["aaguid"],
        backup_eligible=bool(row["backup_eligible"]),
        backup_state=bool(row["backup_state"]),
        user_verified=bool(row["user_verified"]),
        attestation_format=row["attestation_format"],
        name=row["name"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        attestation_trusted=bool(row["attestation_trusted"]),
    )


class SqlPasskeys:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, passkey: Passkey) -> bool:
        """Whether it was added: ``False`` when its credential id is already registered."""
        row = _PASSKEY_ADD[self._c.dialect.name].first(
            self._c,
            {
                "id": passkey.id,
                "user_id": passkey.user_id,
                "credential_id": base64url(passkey.credential_id),
                "public_key": passkey.public_key,
                "sign_count": passkey.sign_count,
                "transports": json.dumps(list(passkey.transports)),
                "aaguid": passkey.aaguid,
                "backup_eligible": passkey.backup_eligible,
                "backup_state": passkey.backup_state,
                "user_verified": passkey.user_verified,
                "attestation_format": passkey.attestation_format,
                "name": passkey.name,
                "created_at": passkey.created_at,
                "attestation_trusted": passkey.attestation_trusted,
            },
        )
        return row is not None

    def by_credential_id(self, credential_id: bytes) -> Passkey | None:
        row = _PASSKEY_BY_CREDENTIAL.mapping(self._c, {"p_credential_id": base64url(credential_id)})
        return _passkey(row) if row else None

    def for_user(self, user_id: str) -> list[Passkey]:
        rows = self._c.execute(
            select(passkeys).where(passkeys.c.user_id == user_id).order_by(passkeys.c.created_at)
        ).mappings()
        return [_passkey(row) for row in rows]

    def record_use(
        self, passkey_id: str, *, sign_count: int, backup_state: bool, now: datetime
    ) -> None:
        _PASSKEY_RECORD_USE.run(
            self._c,
            {
                "p_id": passkey_id,
                "p_sign_count": sign_count,
                "p_backup_state": backup_state,
                "p_now": now,
            },
        )

    def rename(self, user_id: str, passkey_id: str, name: str) -> bool:
        row = self._c.execute(
            update(passkeys)
            .where(passkeys.c.id == passkey_id, passkeys.c.user_id == user_id)
            .values(name=name)
            .returning(passkeys.c.id)
        ).first()
        return row is not None

    def remove(self, user_id: str, passkey_id: str) -> Passkey | None:
        row = (
            self._c.execute(
                delete(passkeys)
                .where(passkeys.c.id == passkey_id, passkeys.c.user_id == user_id)
                .returning(*passkeys.c)
            )
            .mappings()
            .first()
        )
        return _passkey(row) if row else None


class SqlPasswords:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get(self, user_id: str) -> StoredPassword | None:
        row = (
            self._c.execute(select(passwords).where(passwords.c.user_id == user_id))
            .mappings()
            .first()
        )
        if row is None:
            return None
        return StoredPassword(
            user_id=row["user_id"],
            hash=row["hash"],
            scheme=row["scheme"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def put(self, user_id: str, *, hash: str, scheme: str, now: datetime) -> None:
        dialect = postgresql if self._c.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(passwords).values(
            user_id=user_id, hash=hash, scheme=scheme, created_at=now, updated_at=now
        )
        self._c.execute(
            statement.on_conflict_do_update(
                index_elements=[passwords.c.user_id],
                set_={"hash": hash, "scheme": scheme, "updated_at": now},
            )
        )

    def delete(self, user_id: str) -> bool:
        result = self._c.execute(
            delete(passwords).where(passwords.c.user_id == user_id).returning(passwords.c.user_id)
        )
        return result.first() is not None

    def any_usable(self, default_mode: str) -> bool:
        mode = func.coalesce(users.c.migration_mode, default_mode)
        usable = (
            select(passwords.c.user_id)
            .join(users, users.c.id == passwords.c.user_id)
            .where(mode != "passwordless")
            .limit(1)
        )
        return self._c.execute(usable).first() is not None


class SqlLocks:
    """PostgreSQL transaction-level advisory locks; SQLite needs none, because its
    ``BEGIN IMMEDIATE`` transactions already run one at a time."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def hold(self, key: str) -> None:
        if self._c.dialect.name == "postgresql":
            _ADVISORY_LOCK.run(self._c, {"p_key": key})


class SqlRepositories:
    """Implements :class:`sekisho.core.ports.Repositories` for one connection."""

    def __init__(
        self,
        connection: Connection,
        seal: AuditSeal,
        anchors: audit_chain.Anchors | None = None,
        known: audit_chain.KnownHead | None = None,
    ) -> None:
        self.connection = connection
        self.locks = SqlLocks(connection)
        self.logouts = SqlLogouts(connection)
        self.users = SqlUsers(connection, self.logouts)
        self.flows = SqlFlows(connection)
        self.secrets = SqlSecrets(connection)
        self.failures = SqlFailureCounters(connection)
        self.sessions = SqlSessions(connection, self.logouts)
        self.audit = SqlAudit(connection, seal, anchors, known)
        self.outbox = SqlOutbox(connection)
        self.passkeys = SqlPasskeys(connection)
        self.passwords = SqlPasswords(connection)
        self.recovery_codes = SqlRecoveryCodes(connection)
        self.recoveries = SqlRecoveries(connection)
        self.devices = SqlKnownDevices(connection)
        self.operator_recoveries = SqlOperatorRecoveries(connection)
        self.applied_policy = SqlAppliedPolicy(connection)
