"""Pending email address changes over the caller's connection (one transaction with the
users, sessions, audit and outbox repositories).

Invariants: a change is used once, by one ``UPDATE ... WHERE used_at IS NULL AND
expires_at > now RETURNING`` statement, so of concurrent confirmations exactly one wins;
a code guess takes its attempt atomically before the comparison, so concurrent guesses
cannot exceed the cap; a new request ends every earlier pending change of the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from sekisho.store.tables import email_changes as table
from sekisho.store.tables import users


@dataclass(frozen=True, slots=True)
class PendingChange:
    id: str
    user_id: str
    session_id: str
    new_email: str
    code_digest: str
    locale: str
    expires_at: datetime


def _pending(row: RowMapping) -> PendingChange:
    return PendingChange(
        id=row["id"],
        user_id=row["user_id"],
        session_id=row["session_id"],
        new_email=row["new_email"],
        code_digest=row["code_digest"],
        locale=row["locale"],
        expires_at=row["expires_at"],
    )


class SqlEmailChanges:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def start(
        self,
        *,
        change_id: str,
        user_id: str,
        session_id: str,
        new_email: str,
        token_digest: str,
        code_digest: str,
        locale: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """A new pending change; every earlier one of the account stops working."""
        self.cancel(user_id, now=now)
        self._c.execute(
            insert(table).values(
                id=change_id,
                user_id=user_id,
                session_id=session_id,
                new_email=new_email,
                token_digest=token_digest,
                code_digest=code_digest,
                attempts=0,
                locale=locale,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def cancel(self, user_id: str, *, now: datetime) -> int:
        result = self._c.execute(
            update(table)
            .where(table.c.user_id == user_id, table.c.used_at.is_(None))
            .values(used_at=now)
        )
        return result.rowcount

    def use_by_token(self, token_digest: str, *, now: datetime) -> PendingChange | None:
        """The change the link names, used now; None if unknown, used or expired."""
        row = (
            self._c.execute(
                update(table)
                .where(
                    table.c.token_digest == token_digest,
                    table.c.used_at.is_(None),
                    table.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(*table.c)
            )
            .mappings()
            .first()
        )
        return None if row is None else _pending(row)

    def take_code_attempt(self, user_id: str, *, limit: int, now: datetime) -> PendingChange | None:
        """The account's live pending change with one more attempt counted, or None when
        there is none or its attempts are spent."""
        live = select(table.c.id).where(
            table.c.user_id == user_id,
            table.c.used_at.is_(None),
            table.c.expires_at > now,
        )
        row = (
            self._c.execute(
                update(table)
                .where(table.c.id.in_(live.scalar_subquery()), table.c.attempts < limit)
                .values(attempts=table.c.attempts + 1)
                .returning(*table.c)
            )
            .mappings()
            .first()
        )
        return None if row is None else _pending(row)

    def is_pending(self, change_id: str, *, now: datetime) -> bool:
        row = self._c.execute(
            select(table.c.id).where(
                table.c.id == change_id, table.c.used_at.is_(None), table.c.expires_at > now
            )
        ).first()
        return row is not None

    def use_by_id(self, change_id: str, *, now: datetime) -> bool:
        row = self._c.execute(
            update(table)
            .where(table.c.id == change_id, table.c.used_at.is_(None), table.c.expires_at > now)
            .values(used_at=now)
            .returning(table.c.id)
        ).first()
        return row is not None

    def set_address(self, user_id: str, *, old: str, new: str, now: datetime) -> bool:
        """The account's address becomes ``new`` (proven now) if it still is ``old``; the
        unique index on ``users.email`` is the last word when two accounts race for it."""
        row = self._c.execute(
            update(users)
            .where(users.c.id == user_id, users.c.email == old)
            .values(email=new, email_verified_at=now)
            .returning(users.c.id)
        ).first()
        return row is not None
