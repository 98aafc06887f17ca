"""``create_app(settings)``: the only place where the pieces are wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sekisho import __version__, tracing
from sekisho.core.keys import Keyring
from sekisho.mail.senders import make_sender
from sekisho.mail.worker import OutboxWorker
from sekisho.ratelimits import RateLimits
from sekisho.service import Sekisho, utc_now
from sekisho.settings import Settings
from sekisho.store.database import Database, make_engine
from sekisho.store.deployment import prepare
from sekisho.web import admin, api, devmailbox, errors, health, metrics, pages, passkeys_api
from sekisho.web.cookies import Cookies
from sekisho.web.dev_origin import DevelopmentOrigin
from sekisho.web.middleware import BodyLimit, SecurityHeaders
from sekisho.web.request_ids import RequestIds

access_log = logging.getLogger("sekisho.access")
STATIC = Path(__file__).resolve().parent / "web" / "static"


class AccessLog:
    """One line per request: method, path *without* the query string, status, time.

    Tokens travel in query strings (emailed links), so the query is never logged (case 9).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(str(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            client = scope.get("client") or ("-", 0)
            duration = (time.perf_counter() - started) * 1000
            access_log.info(
                '%s "%s %s" %d %.1fms',
                client[0],
                scope["method"],
                scope["path"],
                status,
                duration,
                extra={
                    "client": client[0],
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(duration, 1),
                },
            )


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    database = Database(
        make_engine(settings.database_url), Keyring(settings.secret_key.get_secret_value())
    )
    limits = RateLimits(settings)
    sekisho = Sekisho(settings=settings, database=database, limits=limits, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(
            prepare,
            database.engine,
            settings.database_url,
            sekisho.keys,
            migrate=settings.auto_migrate,
            process="serve",
            now=clock(),
        )
        worker_task: asyncio.Task[None] | None = None
        if settings.mail_worker:
            worker = OutboxWorker(
                settings=settings,
                database=database,
                keys=sekisho.keys,
                sender=make_sender(settings, database),
                clock=sekisho.clock,
            )
            worker_task = asyncio.create_task(worker.run(), name="sekisho-outbox")
        try:
            yield
        finally:
            if worker_task is not None:
                worker_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker_task
            database.dispose()

    app = FastAPI(
        title="Sekisho",
        version=__version__,
        description="Passwordless sign-in: email link + code. JSON API for apps with their own UI.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.sekisho = sekisho
    app.state.cookies = Cookies.for_settings(settings)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(passkeys_api.router)
    app.include_router(admin.router)
    if settings.development:
        app.include_router(devmailbox.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if settings.development:
        app.add_middleware(DevelopmentOrigin, public_origin=settings.public_origin)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    app.add_middleware(AccessLog)
    metrics.install(app, settings, database, limits)
    tracing.install(app, settings)
    app.add_middleware(RequestIds, accept_header=settings.accept_request_id)
    return app
