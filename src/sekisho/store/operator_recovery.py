"""Operator-assisted recovery cases over one connection (one transaction).

Invariants (issue 10 "Recovery that keeps the tier"): only the keyed hash of a case's
one-time code is stored; approving is one ``UPDATE ... WHERE approved_at IS NULL AND
opened_by <> :by ... RETURNING``, so the opener can never approve and two approvals
never both win; the code is spent by one ``UPDATE ... WHERE used_at IS NULL ...
RETURNING``, so it works once, even when raced, on SQLite and PostgreSQL alike; a
cancelled case can be neither approved nor spent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from sekisho.core.records import OperatorRecovery
from sekisho.store.tables import operator_recoveries, users

_t = operator_recoveries
_APPROVE = (
    update(_t)
    .where(
        _t.c.id == bindparam("p_id"),
        _t.c.approved_at.is_(None),
        _t.c.used_at.is_(None),
        _t.c.cancelled_at.is_(None),
        _t.c.expires_at > bindparam("p_now"),
        _t.c.opened_by != bindparam("p_by"),
    )
    .values(
        approved_by=bindparam("p_by"),
        approved_at=bindparam("p_now"),
        code_digest=bindparam("p_digest"),
        expires_at=bindparam("p_expires_at"),
    )
    .returning(_t.c.id)
)
_CONSUME = (
    update(_t)
    .where(
        _t.c.user_id == bindparam("p_user_id"),
        _t.c.code_digest == bindparam("p_digest"),
        _t.c.approved_at.is_not(None),
        _t.c.used_at.is_(None),
        _t.c.cancelled_at.is_(None),
        _t.c.expires_at > bindparam("p_now"),
    )
    .values(used_at=bindparam("p_now"))
    .returning(_t.c.id)
)
_CANCEL = (
    update(_t)
    .where(
        _t.c.id == bindparam("p_id"),
        _t.c.used_at.is_(None),
        _t.c.cancelled_at.is_(None),
        _t.c.expires_at > bindparam("p_now"),
    )
    .values(cancelled_by=bindparam("p_by"), cancelled_at=bindparam("p_now"))
    .returning(_t.c.id)
)
_SELECT = select(_t, users.c.email).join(users, users.c.id == _t.c.user_id)


def _case(row: Any) -> OperatorRecovery:
    return OperatorRecovery(
        id=row["id"],
        user_id=row["user_id"],
        email=row["email"],
        reason=row["reason"],
        opened_by=row["opened_by"],
        opened_at=row["opened_at"],
        expires_at=row["expires_at"],
        approved_by=row["approved_by"],
        approved_at=row["approved_at"],
        used_at=row["used_at"],
        session_id=row["session_id"],
        cancelled_by=row["cancelled_by"],
        cancelled_at=row["cancelled_at"],
    )


class SqlOperatorRecoveries:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def open(self, case: OperatorRecovery) -> None:
        self._c.execute(
            insert(_t).values(
                id=case.id,
                user_id=case.user_id,
                reason=case.reason,
                opened_by=case.opened_by,
                opened_at=case.opened_at,
                expires_at=case.expires_at,
            )
        )

    def get(self, case_id: str) -> OperatorRecovery | None:
        row = self._c.execute(_SELECT.where(_t.c.id == case_id)).mappings().first()
        return _case(row) if row is not None else None

    def pending_for(self, user_id: str, *, now: datetime) -> OperatorRecovery | None:
        row = (
            self._c.execute(
                _SELECT.where(
                    _t.c.user_id == user_id,
                    _t.c.used_at.is_(None),
                    _t.c.cancelled_at.is_(None),
                    _t.c.expires_at > now,
                ).limit(1)
            )
            .mappings()
            .first()
        )
        return _case(row) if row is not None else None

    def for_session(self, session_id: str) -> OperatorRecovery | None:
        row = self._c.execute(_SELECT.where(_t.c.session_id == session_id)).mappings().first()
        return _case(row) if row is not None else None

    def recent(self, *, limit: int) -> list[OperatorRecovery]:
        rows = self._c.execute(_SELECT.order_by(_t.c.opened_at.desc()).limit(limit)).mappings()
        return [_case(row) for row in rows]

    def approve(
        self, case_id: str, *, by: str, code_digest: str, expires_at: datetime, now: datetime
    ) -> bool:
        row = self._c.execute(
            _APPROVE,
            {
                "p_id": case_id,
                "p_by": by,
                "p_now": now,
                "p_digest": code_digest,
                "p_expires_at": expires_at,
            },
        ).first()
        return row is not None

    def consume(self, user_id: str, code_digest: str, *, now: datetime) -> str | None:
        row = self._c.execute(
            _CONSUME, {"p_user_id": user_id, "p_digest": code_digest, "p_now": now}
        ).first()
        return str(row[0]) if row is not None else None

    def cancel(self, case_id: str, *, by: str, now: datetime) -> bool:
        row = self._c.execute(_CANCEL, {"p_id": case_id, "p_by": by, "p_now": now}).first()
        return row is not None

    def attach_session(self, case_id: str, session_id: str) -> None:
        self._c.execute(update(_t).where(_t.c.id == case_id).values(session_id=session_id))
