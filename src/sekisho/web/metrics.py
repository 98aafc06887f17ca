"""``GET /metrics``: the Prometheus text format, behind a bearer token (docs/observability.md).

Without ``metrics_token`` the route answers 404 like any unknown path; with it, a request
without ``Authorization: Bearer <metrics_token>`` gets 401 ``not_authenticated``.
"""

from __future__ import annotations

import asyncio
import hmac

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from sekisho.errors import ErrorCode, SekishoError
from sekisho.metrics import Metrics
from sekisho.ratelimits import RateLimits
from sekisho.settings import Settings
from sekisho.store.database import Database


def install(app: FastAPI, settings: Settings, database: Database, limits: RateLimits) -> Metrics:
    """The ``/metrics`` route; returns the registry's owner, whose ``observe_request``
    the access log feeds. The route reads both from ``app.state``: an endpoint that
    closed over them would outlive the app in FastAPI's callable caches, and with it
    the database engine."""
    metrics = Metrics(database, limits)
    app.state.metrics = metrics
    app.state.metrics_token = (
        settings.metrics_token.get_secret_value().encode() if settings.metrics_token else None
    )
    app.add_api_route("/metrics", _scrape, methods=["GET"], include_in_schema=False)
    return metrics


async def _scrape(request: Request) -> Response:
    token: bytes | None = request.app.state.metrics_token
    if token is None:
        raise SekishoError(ErrorCode.not_found)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token):
        raise SekishoError(ErrorCode.not_authenticated)
    metrics: Metrics = request.app.state.metrics
    body = await asyncio.to_thread(generate_latest, metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
