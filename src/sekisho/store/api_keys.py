"""Storage of API keys (core/api_keys.py) over the caller's connection, so a key's
creation or revocation commits with its audit event.

Invariant: only the keyed hash of a key's secret is written; revocation is one
``UPDATE ... WHERE revoked_at IS NULL``, so a key is revoked once and stays revoked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from sekisho.core.api_keys import ApiKey
from sekisho.store.tables import api_keys


def _record(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scopes=tuple(row["scopes"].split()),
        digest=row["digest"],
        created_at=row["created_at"],
        operator=row["operator"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


class SqlApiKeys:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, key: ApiKey) -> None:
        self._connection.execute(
            insert(api_keys).values(
                id=key.id,
                name=key.name,
                scopes=" ".join(key.scopes),
                digest=key.digest,
                created_at=key.created_at,
                operator=key.operator,
            )
        )

    def get(self, identifier: str) -> ApiKey | None:
        row = (
            self._connection.execute(select(api_keys).where(api_keys.c.id == identifier))
            .mappings()
            .first()
        )
        return _record(row) if row else None

    def all(self) -> list[ApiKey]:
        rows = self._connection.execute(select(api_keys).order_by(api_keys.c.created_at))
        return [_record(row) for row in rows.mappings()]

    def revoke(self, identifier: str, *, now: datetime) -> bool:
        done = self._connection.execute(
            update(api_keys)
            .where(api_keys.c.id == identifier, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return done.rowcount == 1

    def used(self, identifier: str, *, now: datetime) -> None:
        self._connection.execute(
            update(api_keys).where(api_keys.c.id == identifier).values(last_used_at=now)
        )
