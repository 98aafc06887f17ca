"""Accounts imported with a legacy password, written straight to the database the way
``sekisho users import`` stores them."""

from __future__ import annotations

from datetime import UTC, datetime

from sekisho.core.records import User
from sekisho.methods.password.hashes import scheme_of
from tests.support.server import LiveServer


def import_with_password(
    server: LiveServer, email: str, stored: str, mode: str | None = None
) -> str:
    """The id of a new imported account holding the hash ``stored``, with its own
    ``migration_mode`` ``mode`` (None: the deployment's)."""
    database = server.database
    now = datetime.now(UTC)
    user_id = f"legacy-{email.split('@')[0]}"
    with database.transaction() as repos:
        repos.users.save_imported(
            User(
                id=user_id,
                email=email,
                status="active",
                created_at=now,
                migration_mode=mode,
                imported_at=now,
            )
        )
        scheme = scheme_of(stored)
        assert scheme is not None
        repos.passwords.put(user_id, hash=stored, scheme=scheme, now=now)
    database.dispose()
    return user_id
