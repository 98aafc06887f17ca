"""Operator pages: the migration report, with charts, tables and CSV/JSON export (the
recovery cases are in ``web/admin_recoveries.py``, behind the same door).

Only signed-in accounts whose address is in ``admin_emails`` may see them; everyone
else gets the same 404 as a missing page. An operator's session must be phishing
resistant (a passkey with user verification) and at AAL2 or the operator's tier's
sign-in level, whichever is higher (issue 10): an operator signed in by email, password
or recovery code, or below the tier's level (a session from before the tier was raised),
is refused with a page saying to sign in with a passkey (403
``operator_passkey_required``).
"""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.core.records import User
from sekisho.errors import ErrorCode, SekishoError
from sekisho.policy.assurance import verified_passkey
from sekisho.store.reporting import METHODS, Cohort, MigrationReport, migration_report
from sekisho.web import charts, context
from sekisho.web.charts import Frame, nice_top
from sekisho.web.rendering import page

router = APIRouter(include_in_schema=False)
CHARTED_COHORTS = 4
BAR_SHARE = 0.7


def require_operator(request: Request) -> User:
    """The signed-in operator, or the refusal this module's docstring describes."""
    sekisho = context.service(request)
    session = context.any_session(request)
    if session is None:
        raise SekishoError(ErrorCode.not_found)
    operator = sekisho.user_of(session)
    if operator.email not in sekisho.admin_emails:
        raise SekishoError(ErrorCode.not_found)
    if session.restricted:
        raise SekishoError(ErrorCode.restricted_session)
    tier_level = sekisho.completion.policy.tier_for(operator).signin_aal
    if not verified_passkey(session.amr, session.aal) or session.aal < tier_level:
        raise SekishoError(ErrorCode.operator_passkey_required)
    return operator


def _bars(report: MigrationReport, frame: Frame) -> list[dict[str, object]]:
    """Stacked bars, one per day: password at the bottom, then email, then passkeys."""
    width = round(frame.slot * BAR_SHARE, 1)
    bars: list[dict[str, object]] = []
    for index, day in enumerate(report.sign_ins_by_day):
        below = 0
        segments = []
        for method in METHODS:
            count = int(day[method])
            if count:
                segments.append(
                    {
                        "method": method,
                        "y": frame.y(below + count),
                        "height": round(frame.y(below) - frame.y(below + count), 1),
                        "count": count,
                    }
                )
            below += count
        bars.append(
            {
                "x": round(frame.x(index) - width / 2, 1),
                "width": width,
                "day": day["day"],
                "total": below,
                "segments": segments,
            }
        )
    return bars


def _cohort_lines(cohorts: list[Cohort], frame: Frame) -> list[dict[str, object]]:
    """One line per recent import cohort: its share of moved accounts, day by day."""
    lines: list[dict[str, object]] = []
    for number, cohort in enumerate(cohorts[:CHARTED_COHORTS]):
        points = [
            {
                "x": frame.x(index),
                "y": frame.y(moved / cohort.accounts),
                "day": frame.days[index],
                "moved": moved,
                "percent": round(moved / cohort.accounts * 100),
            }
            for index, moved in enumerate(cohort.moved_by_day)
            if moved is not None
        ]
        lines.append(
            {
                "number": number,
                "cohort": cohort,
                "points": points,
                "path": " ".join(f"{point['x']},{point['y']}" for point in points),
            }
        )
    return lines


@router.api_route("/admin/migration", methods=["GET", "HEAD"])
def migration(request: Request, format: str = "html") -> Response:
    require_operator(request)
    sekisho = context.service(request)
    report = migration_report(sekisho.database, now=sekisho.clock())
    if format == "json":
        return JSONResponse(json_body(report))
    if format == "csv":
        return Response(
            report.as_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="sekisho-migration.csv"'},
        )
    peak = max((sum(int(day[m]) for m in METHODS) for day in report.sign_ins_by_day), default=0)
    sign_ins = Frame(report.days, nice_top(peak))
    shares = Frame(report.days, 1.0)
    return page(
        request,
        "admin_migration.html",
        report=report,
        generated_at=datetime.fromisoformat(report.generated_at),
        methods=METHODS,
        sign_ins=sign_ins,
        bars=_bars(report, sign_ins),
        shares=shares,
        cohort_lines=_cohort_lines(report.cohorts, shares),
        chart=charts,
    )


def json_body(report: MigrationReport) -> dict[str, object]:
    body: dict[str, object] = json.loads(report.as_json())
    return body
