"""Operator pages: the migration report, with a chart and CSV/JSON export.

Only signed-in accounts whose address is in ``admin_emails`` may see them; everyone
else gets the same 404 as a missing page.
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.errors import ErrorCode, SekishoError
from sekisho.store.reporting import METHODS, MigrationReport, migration_report
from sekisho.web import context
from sekisho.web.rendering import page

router = APIRouter(include_in_schema=False)
CHART_HEIGHT = 120
BAR_WIDTH = 14


def _require_admin(request: Request) -> None:
    sekisho = context.service(request)
    session = context.current_session(request)
    if session is None or sekisho.user_of(session).email not in sekisho.admin_emails:
        raise SekishoError(ErrorCode.not_found)


def _bars(report: MigrationReport) -> list[dict[str, object]]:
    """Stacked bars for an inline SVG (no script: the CSP allows none inline)."""
    peak = (
        max((sum(int(day[m]) for m in METHODS) for day in report.sign_ins_by_day), default=0) or 1
    )
    bars: list[dict[str, object]] = []
    for index, day in enumerate(report.sign_ins_by_day):
        y = CHART_HEIGHT
        segments = []
        for method in METHODS:
            height = round(int(day[method]) / peak * CHART_HEIGHT)
            y -= height
            segments.append({"method": method, "y": y, "height": height, "count": day[method]})
        bars.append({"x": index * (BAR_WIDTH + 2), "day": day["day"], "segments": segments})
    return bars


@router.api_route("/admin/migration", methods=["GET", "HEAD"])
def migration(request: Request, format: str = "html") -> Response:
    _require_admin(request)
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
    return page(
        request,
        "admin_migration.html",
        report=report,
        bars=_bars(report),
        chart_width=len(report.sign_ins_by_day) * (BAR_WIDTH + 2),
        chart_height=CHART_HEIGHT,
        bar_width=BAR_WIDTH,
    )


def json_body(report: MigrationReport) -> dict[str, object]:
    body: dict[str, object] = json.loads(report.as_json())
    return body
