"""Recovery codes and account recoveries over one connection (one transaction).

Invariant (SECURITY.md case 32): only keyed hashes of codes are stored, and a code is
spent by one ``UPDATE ... WHERE used_at IS NULL RETURNING`` statement, so of any
number of concurrent uses exactly one wins, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from sekisho.core.records import Recovery, RecoveryCodeSet
from sekisho.store.tables import account_recoveries, recovery_codes

_CODE_CONSUME = (
    update(recovery_codes)
    .where(
        recovery_codes.c.user_id == bindparam("p_user_id"),
        recovery_codes.c.digest == bindparam("p_digest"),
        recovery_codes.c.used_at.is_(None),
    )
    .values(used_at=bindparam("p_now"))
    .returning(recovery_codes.c.id)
)
_RECOVERY_COMPLETE = (
    update(account_recoveries)
    .where(
        account_recoveries.c.session_id == bindparam("p_session_id"),
        account_recoveries.c.completed_at.is_(None),
    )
    .values(
        completed_at=bindparam("p_now"),
        hold_until=bindparam("p_hold_until"),
        passkey_id=bindparam("p_passkey_id"),
    )
    .returning(account_recoveries.c.session_id)
)


class SqlRecoveryCodes:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def replace(self, user_id: str, digests: list[str], *, now: datetime) -> int:
        removed = self._c.execute(
            delete(recovery_codes)
            .where(recovery_codes.c.user_id == user_id)
            .returning(recovery_codes.c.id)
        ).all()
        self._c.execute(
            insert(recovery_codes),
            [{"user_id": user_id, "digest": digest, "created_at": now} for digest in digests],
        )
        return len(removed)

    def consume(self, user_id: str, digest: str, *, now: datetime) -> bool:
        row = self._c.execute(
            _CODE_CONSUME, {"p_user_id": user_id, "p_digest": digest, "p_now": now}
        ).first()
        return row is not None

    def status(self, user_id: str) -> RecoveryCodeSet:
        t = recovery_codes
        generated_at, remaining = self._c.execute(
            select(
                func.max(t.c.created_at),
                func.count(t.c.id).filter(t.c.used_at.is_(None)),
            ).where(t.c.user_id == user_id)
        ).one()
        return RecoveryCodeSet(generated_at=generated_at, remaining=int(remaining or 0))


class SqlRecoveries:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def start(self, recovery: Recovery) -> None:
        self._c.execute(
            insert(account_recoveries).values(
                session_id=recovery.session_id,
                user_id=recovery.user_id,
                started_at=recovery.started_at,
            )
        )

    def for_session(self, session_id: str) -> Recovery | None:
        t = account_recoveries
        row = self._c.execute(select(t).where(t.c.session_id == session_id)).mappings().first()
        if row is None:
            return None
        return Recovery(
            session_id=row["session_id"],
            user_id=row["user_id"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            hold_until=row["hold_until"],
            passkey_id=row["passkey_id"],
        )

    def complete(
        self, session_id: str, *, passkey_id: str, hold_until: datetime, now: datetime
    ) -> bool:
        row = self._c.execute(
            _RECOVERY_COMPLETE,
            {
                "p_session_id": session_id,
                "p_now": now,
                "p_hold_until": hold_until,
                "p_passkey_id": passkey_id,
            },
        ).first()
        return row is not None

    def hold_until(self, user_id: str, *, now: datetime) -> datetime | None:
        t = account_recoveries
        value: datetime | None = self._c.execute(
            select(func.max(t.c.hold_until)).where(t.c.user_id == user_id, t.c.hold_until > now)
        ).scalar_one()
        return value
