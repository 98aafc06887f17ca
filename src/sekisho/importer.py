"""Importing existing users (``sekisho users import``) from CSV or JSON Lines.

Invariants:
- each row is its own transaction: a bad row is reported with its line number and
  reason and writes nothing, and never stops the others;
- running the same file twice changes nothing (``unchanged``);
- the user's existing id is kept as Sekisho's user id, so apps that stored it keep
  working (it will be the OIDC ``sub`` once the provider exists);
- a password hash is checked by the parser sign-in verifies it with, so one that can
  never verify (unknown format, malformed, parameters out of range) is refused with
  its line number, never stored;
- a legacy hash is stored wrapped (argon2id over the legacy key, see
  :mod:`sekisho.methods.password.legacy`): the database never holds the weak original;
- an account that already holds a password (perhaps rehashed to argon2id at its first
  sign-in) or has retired it keeps what it has: a re-import never brings back or
  replaces a password.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from sekisho.core.addresses import InvalidAddress, normalize_email
from sekisho.core.records import User
from sekisho.methods.password.hashes import Unusable, check, prepare_for_storage
from sekisho.store.database import Database

KNOWN_FIELDS = {
    "id",
    "email",
    "email_verified",
    "display_name",
    "password_hash",
    "migration_mode",
    "attributes",
}
MIGRATION_MODES = {"hybrid", "phase_out", "passwordless"}
MAX_ID_LENGTH = 64
TRUE = {"1", "true", "yes", "y", "t"}
FALSE = {"0", "false", "no", "n", "f", ""}


class RowError(ValueError):
    """Why a row was refused (shown to the operator with its line number)."""


@dataclass(frozen=True, slots=True)
class ImportRow:
    id: str
    email: str
    email_verified: bool
    display_name: str | None
    password_hash: str | None
    migration_mode: str | None
    attributes: dict[str, Any]


@dataclass(slots=True)
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.rejected)


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, raw row) for a ``.csv`` file (with a header) or JSON Lines."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, dict(row)
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                yield number, {"__invalid__": "not valid JSON"}
                continue
            yield number, value if isinstance(value, dict) else {"__invalid__": "not a JSON object"}


def _text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise RowError(f"{name} must be text")
    text = str(value).strip()
    return text or None


def _password(value: str | None) -> str | None:
    """The hash as given, once the parser sign-in verifies it with agreed it can verify
    (wrapping, which costs an argon2id, waits until the hash is really stored)."""
    if value is not None:
        try:
            check(value)
        except Unusable as error:
            raise _cannot_verify(error) from error
    return value


def _cannot_verify(error: Unusable) -> RowError:
    return RowError(f"password_hash is in a format Sekisho cannot verify: {error}")


def parse_row(raw: dict[str, Any]) -> ImportRow:
    if "__invalid__" in raw:
        raise RowError(str(raw["__invalid__"]))
    user_id = _text(raw, "id")
    if not user_id or len(user_id) > MAX_ID_LENGTH or not user_id.isprintable():
        raise RowError("id is missing, longer than 64 characters or not printable")
    try:
        email = normalize_email(_text(raw, "email") or "")
    except InvalidAddress as error:
        raise RowError("email is missing or not a valid address") from error
    verified_value = raw.get("email_verified")
    verified_text = "" if verified_value is None else str(verified_value).strip().lower()
    if verified_text not in TRUE | FALSE:
        raise RowError("email_verified must be true or false")
    password_hash = _password(_text(raw, "password_hash"))
    mode = _text(raw, "migration_mode")
    if mode is not None and mode not in MIGRATION_MODES:
        raise RowError("migration_mode must be hybrid, phase_out or passwordless")
    attributes = raw.get("attributes") or {}
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except json.JSONDecodeError as error:
            raise RowError("attributes must be a JSON object") from error
    if not isinstance(attributes, dict):
        raise RowError("attributes must be a JSON object")
    extra = {
        key: value
        for key, value in raw.items()
        if key not in KNOWN_FIELDS and value not in (None, "")
    }
    display_name = _text(raw, "display_name")
    if display_name is not None and len(display_name) > 200:
        raise RowError("display_name is longer than 200 characters")
    return ImportRow(
        id=user_id,
        email=email,
        email_verified=verified_text in TRUE,
        display_name=display_name,
        password_hash=password_hash,
        migration_mode=mode,
        attributes={**extra, **attributes},
    )


def import_users(
    database: Database,
    path: Path,
    *,
    now: datetime,
    progress: Callable[[], None] | None = None,
) -> ImportSummary:
    summary = ImportSummary()
    for line, raw in read_rows(path):
        try:
            outcome = _import_one(database, parse_row(raw), now)
        except RowError as error:
            summary.rejected.append((line, str(error)))
        except IntegrityError:
            summary.rejected.append((line, "conflicts with another account (id or email)"))
        else:
            setattr(summary, outcome, getattr(summary, outcome) + 1)
        if progress is not None:
            progress()
    return summary


def _import_one(database: Database, row: ImportRow, now: datetime) -> str:
    with database.transaction() as repos:
        holder = repos.users.by_email(row.email)
        if holder is not None and holder.id != row.id:
            raise RowError("email already belongs to another account")
        outcome = repos.users.save_imported(
            User(
                id=row.id,
                email=row.email,
                status="active",
                created_at=now,
                email_verified_at=now if row.email_verified else None,
                display_name=row.display_name,
                attributes=row.attributes,
                migration_mode=row.migration_mode,
                imported_at=now,
            )
        )
        user = repos.users.by_id(row.id)
        if (
            row.password_hash is not None
            and user is not None
            and user.password_retired_at is None
            and repos.passwords.get(row.id) is None
        ):
            try:
                stored, scheme = prepare_for_storage(row.password_hash)
            except Unusable as error:
                raise _cannot_verify(error) from error
            repos.passwords.put(row.id, hash=stored, scheme=scheme, now=now)
            if outcome == "unchanged":
                outcome = "updated"
        return outcome
