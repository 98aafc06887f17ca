"""Liveness (the process answers) and readiness (the database answers)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.web import context
from sekisho.web.lean_route import LeanRoute

router = APIRouter(tags=["health"], include_in_schema=False, route_class=LeanRoute)
_LIVE = b'{"status":"ok"}'


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def liveness() -> Response:
    """On the event loop, with no response model: it touches nothing, so a hop to the
    thread pool (and a second one for validating a model) would be most of its cost."""
    return Response(_LIVE, media_type="application/json")


@router.api_route("/readyz", methods=["GET", "HEAD"])
def readiness(request: Request) -> JSONResponse:
    try:
        context.service(request).database.ping()
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "up"})
