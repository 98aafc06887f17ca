"""Transaction confirmations over the caller's connection (one transaction with the
audit and passkey repositories).

Invariant: a confirmation is confirmed once and redeemed once, each by one
``UPDATE ... WHERE ... IS NULL ... RETURNING`` statement, so of any number of concurrent
callers exactly one wins (SECURITY.md case 52: a second use is refused).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from sekisho.policy.confirmations import Confirmation
from sekisho.store.prepared import Prepared
from sekisho.store.tables import transaction_confirmations as table

# Prepared (``store/prepared.py``): a step-up confirmation runs them in each of its steps.
_ADD = Prepared(
    insert(table),
    keys=(
        "id",
        "client_id",
        "user_id",
        "session_id",
        "action",
        "details",
        "details_hash",
        "return_uri",
        "created_at",
        "expires_at",
    ),
)
_GET = Prepared(select(table).where(table.c.id == bindparam("p_id")))
_CONFIRM = Prepared(
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
_REDEEM = Prepared(
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


def _record(row: Mapping[str, Any]) -> Confirmation:
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
        _ADD.run(
            self._c,
            {
                "id": confirmation.id,
                "client_id": confirmation.client_id,
                "user_id": confirmation.user_id,
                "session_id": confirmation.session_id,
                "action": confirmation.action,
                "details": canonical_details,
                "details_hash": confirmation.details_hash,
                "return_uri": confirmation.return_uri,
                "created_at": confirmation.created_at,
                "expires_at": confirmation.expires_at,
            },
        )

    def get(self, confirmation_id: str) -> Confirmation | None:
        row = _GET.mapping(self._c, {"p_id": confirmation_id})
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
        row = _CONFIRM.first(
            self._c,
            {
                "p_id": confirmation_id,
                "p_now": now,
                "p_expires": expires_at,
                "p_passkey": passkey_id,
                "p_acr": acr,
                "p_amr": " ".join(amr),
                "p_token": token,
            },
        )
        return row is not None

    def redeem(self, confirmation_id: str, *, client_id: str, now: datetime) -> Confirmation | None:
        """Spend a confirmed, unexpired confirmation of ``client_id``: it for the one
        winner, else None."""
        row = _REDEEM.mapping(
            self._c, {"p_id": confirmation_id, "p_client": client_id, "p_now": now}
        )
        return _record(row) if row else None
