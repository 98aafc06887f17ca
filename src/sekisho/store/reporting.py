"""Where the move off passwords stands, as numbers (``sekisho migration status`` and the
admin page). Read-only queries over users, passwords, passkeys and the audit log."""

from __future__ import annotations

import csv
import io
import json
from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, func, or_, select

from sekisho.store.database import Database
from sekisho.store.tables import audit_events, passkeys, passwords, users

METHODS = ("pwd", "email", "passkey")


@dataclass(frozen=True, slots=True)
class Cohort:
    """The accounts imported on one day, and how many of them had moved to passwordless
    sign-in by the end of each day of the report (``moved_by_day``, aligned with
    ``sign_ins_by_day``; ``None`` before the import). An account has moved once it has
    signed in by email or passkey, or its password was retired, whichever came first."""

    imported_on: str
    accounts: int
    moved: int
    moved_by_day: list[int | None]

    @property
    def share(self) -> float:
        return self.moved / self.accounts if self.accounts else 0.0


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
    cohorts: list[Cohort] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def as_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["metric", "value"])
        for key, value in asdict(self).items():
            if key not in ("sign_ins_by_day", "cohorts"):
                writer.writerow([key, value])
        writer.writerow([])
        writer.writerow(["day", *METHODS])
        for day in self.sign_ins_by_day:
            writer.writerow([day["day"], *(day[method] for method in METHODS)])
        writer.writerow([])
        writer.writerow(["imported_on", "accounts", "moved", *self.days])
        for cohort in self.cohorts:
            writer.writerow(
                [
                    cohort.imported_on,
                    cohort.accounts,
                    cohort.moved,
                    *("" if moved is None else moved for moved in cohort.moved_by_day),
                ]
            )
        return buffer.getvalue()

    @property
    def days(self) -> list[str]:
        return [str(day["day"]) for day in self.sign_ins_by_day]


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
        cohorts=_cohorts(database, list(by_day)),
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


def _cohorts(database: Database, days: list[str]) -> list[Cohort]:
    """Per import day, newest first: accounts, and how many had moved by each day."""
    passwordless = or_(audit_events.c.amr.like("%email%"), audit_events.c.amr.like("%wk%"))
    first_passwordless = (
        select(audit_events.c.user_id, func.min(audit_events.c.at).label("at"))
        .where(audit_events.c.event == "signin.succeeded", passwordless)
        .group_by(audit_events.c.user_id)
        .subquery()
    )
    statement = (
        select(users.c.imported_at, users.c.password_retired_at, first_passwordless.c.at)
        .select_from(
            users.outerjoin(first_passwordless, first_passwordless.c.user_id == users.c.id)
        )
        .where(users.c.status == "active", users.c.imported_at.is_not(None))
    )
    with database.engine.connect() as connection:
        rows = connection.execute(statement).all()
    moved_on: dict[str, list[str | None]] = {}
    for imported_at, retired_at, signed_in_at in rows:
        moments = [moment for moment in (retired_at, signed_in_at) if moment is not None]
        moved = min(moments).date().isoformat() if moments else None
        moved_on.setdefault(imported_at.date().isoformat(), []).append(moved)
    cohorts = []
    for imported_on in sorted(moved_on, reverse=True):
        moved_days = sorted(day for day in moved_on[imported_on] if day is not None)
        cohorts.append(
            Cohort(
                imported_on=imported_on,
                accounts=len(moved_on[imported_on]),
                moved=len(moved_days),
                moved_by_day=[
                    None if day < imported_on else bisect_right(moved_days, day) for day in days
                ],
            )
        )
    return cohorts
