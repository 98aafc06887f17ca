"""Transaction confirmations over the caller's connection (one transaction with the
audit and passkey repositories).

Invariant: a confirmation is confirmed once and redeemed once, each by one
``UPDATE ... WHERE ... IS NULL ... RETURNING`` statement, so of any number of concurrent
callers exactly one wins (SECURITY.md case 52: a second use is refused).
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from sekisho.policy.confirmations import Confirmation
from sekisho.store.tables import transaction_confirmations as table

_GET = select(table).where(table.c.id == bindparam("p_id"))
_CONFIRM = (
    update(table)
    .where(
        table.c.id == bindparam("p_id"),
        table.c.confirmed_at.is_(None),
        table.c.expires_at > bindparam("p_now"),
    )
    .values(
        confirmed_at=bindparam("p_now"),
        expires_at=bindparam("p_expires"),
        passkey_id=bindparam("p_passkey"),
        acr=bindparam("p_acr"),
        amr=bindparam("p_amr"),
        token=bindparam("p_token"),
    )
    .returning(table.c.id)
)
_REDEEM = (
    update(table)
    .where(
        table.c.id == bindparam("p_id"),
        table.c.client_id == bindparam("p_client"),
        table.c.confirmed_at.is_not(None),
        table.c.redeemed_at.is_(None),
        table.c.expires_at > bindparam("p_now"),
    )
    .values(redeemed_at=bindparam("p_now"))
    .returning(*table.c)
)


def _record(row: RowMapping) -> Confirmation:
    return Confirmation(
        id=row["id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        session_id=row["session_id"],
        action=row["action"],
        details=json.loads(row["details"]),
        details_hash=row["details_hash"],
        return_uri=row["return_uri"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        confirmed_at=row["confirmed_at"],
        passkey_id=row["passkey_id"],
        acr=row["acr"],
        amr=tuple((row["amr"] or "").split()),
        token=row["token"],
        redeemed_at=row["redeemed_at"],
    )


class SqlConfirmations:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, confirmation: Confirmation, *, canonical_details: str) -> None:
        self._c.execute(
            insert(table).values(
                id=confirmation.id,
                client_id=confirmation.client_id,
                user_id=confirmation.user_id,
                session_id=confirmation.session_id,
                action=confirmation.action,
                details=canonical_details,
                details_hash=confirmation.details_hash,
                return_uri=confirmation.return_uri,
                created_at=confirmation.created_at,
                expires_at=confirmation.expires_at,
            )
        )

    def get(self, confirmation_id: str) -> Confirmation | None:
        row = self._c.execute(_GET, {"p_id": confirmation_id}).mappings().first()
        return _record(row) if row else None

    def confirm(
        self,
        confirmation_id: str,
        *,
        now: datetime,
        expires_at: datetime,
        passkey_id: str,
        acr: str,
        amr: tuple[str, ...],
        token: str,
    ) -> bool:
        """Record the one confirmation of a pending, unexpired request."""
        row = self._c.execute(
            _CONFIRM,
            {
                "p_id": confirmation_id,
                "p_now": now,
                "p_expires": expires_at,
                "p_passkey": passkey_id,
                "p_acr": acr,
                "p_amr": " ".join(amr),
                "p_token": token,
            },
        ).first()
        return row is not None

    def redeem(self, confirmation_id: str, *, client_id: str, now: datetime) -> Confirmation | None:
        """Spend a confirmed, unexpired confirmation of ``client_id``: it for the one
        winner, else None."""
        row = (
            self._c.execute(_REDEEM, {"p_id": confirmation_id, "p_client": client_id, "p_now": now})
            .mappings()
            .first()
        )
        return _record(row) if row else None
