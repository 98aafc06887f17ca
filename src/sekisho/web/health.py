"""Liveness (the process answers) and readiness (the database answers)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from sekisho.web import context

router = APIRouter(tags=["health"], include_in_schema=False)


@router.api_route("/healthz", methods=["GET", "HEAD"])
def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.api_route("/readyz", methods=["GET", "HEAD"])
def readiness(request: Request) -> JSONResponse:
    try:
        context.service(request).database.ping()
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "up"})
