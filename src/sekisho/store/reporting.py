"""Where the move off passwords stands, as numbers (``sekisho migration status`` and the
admin page). Read-only queries over users, passwords, passkeys and the audit log."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, func, or_, select

from sekisho.store.database import Database
from sekisho.store.tables import audit_events, passkeys, passwords, users

METHODS = ("pwd", "email", "passkey")


@dataclass(frozen=True, slots=True)
class MigrationReport:
    generated_at: str
    users: int
    password_only: int
    password_and_passwordless: int
    passwordless_only: int
    passkey_enrolled: int
    imported: int
    imported_never_signed_in: int
    sign_ins_by_day: list[dict[str, int | str]] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def as_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["metric", "value"])
        for key, value in asdict(self).items():
            if key != "sign_ins_by_day":
                writer.writerow([key, value])
        writer.writerow([])
        writer.writerow(["day", *METHODS])
        for day in self.sign_ins_by_day:
            writer.writerow([day["day"], *(day[method] for method in METHODS)])
        return buffer.getvalue()


def _method(amr: str) -> str:
    words = amr.split()
    if "pwd" in words:
        return "pwd"
    if "email" in words:
        return "email"
    return "passkey"


def migration_report(database: Database, *, now: datetime, days: int = 30) -> MigrationReport:
    has_password = exists().where(passwords.c.user_id == users.c.id)
    has_passkey = exists().where(passkeys.c.user_id == users.c.id)
    used_passwordless = exists().where(
        audit_events.c.user_id == users.c.id,
        audit_events.c.event == "signin.succeeded",
        or_(audit_events.c.amr.like("%email%"), audit_events.c.amr.like("%wk%")),
    )
    since = now - timedelta(days=days)

    def count(*conditions: ColumnElement[bool]) -> int:
        statement = (
            select(func.count()).select_from(users).where(users.c.status == "active", *conditions)
        )
        with database.engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())

    with database.engine.connect() as connection:
        events = connection.execute(
            select(audit_events.c.at, audit_events.c.amr).where(
                audit_events.c.event == "signin.succeeded", audit_events.c.at >= since
            )
        ).all()
    by_day: dict[str, dict[str, int]] = {}
    for day_offset in range(days, -1, -1):
        key = (now - timedelta(days=day_offset)).date().isoformat()
        by_day[key] = dict.fromkeys(METHODS, 0)
    for at, amr in events:
        key = at.date().isoformat()
        if key in by_day:
            by_day[key][_method(amr)] += 1
    return MigrationReport(
        generated_at=now.isoformat(),
        users=count(),
        password_only=count(has_password, ~has_passkey, ~used_passwordless),
        password_and_passwordless=count(has_password, or_(has_passkey, used_passwordless)),
        passwordless_only=count(~has_password),
        passkey_enrolled=count(has_passkey),
        imported=count(users.c.imported_at.is_not(None)),
        imported_never_signed_in=count(
            users.c.imported_at.is_not(None),
            or_(users.c.last_sign_in_at.is_(None), users.c.last_sign_in_at < users.c.imported_at),
        ),
        sign_ins_by_day=[{"day": day, **counts} for day, counts in by_day.items()],
    )
