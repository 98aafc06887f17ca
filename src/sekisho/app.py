"""``create_app(settings)``: the only place where the pieces are wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI
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
from sekisho.web import (
    admin,
    api,
    devmailbox,
    errors,
    health,
    metrics,
    pages,
    params,
    passkeys_api,
    recovery_api,
    recovery_pages,
)
from sekisho.web.cookies import Cookies
from sekisho.web.dev_origin import DevelopmentOrigin
from sekisho.web.devices import DeviceCookie
from sekisho.web.middleware import BodyLimit, BodyReadTimeout, HeadAsGet, SecurityHeaders
from sekisho.web.request_ids import RequestIds

access_log = logging.getLogger("sekisho.access")
STATIC = Path(__file__).resolve().parent / "web" / "static"


class AccessLog:
    """One line per request: method, path *without* the query string, status, time; and
    the same status and time handed to ``observe`` (the request metrics).

    Tokens travel in query strings (emailed links), so the query is never logged (case 9).
    The path is logged percent-encoded, so a CR or LF in a URL cannot forge a line.
    """

    def __init__(self, app: ASGIApp, *, observe: Callable[[Scope, int, float], None]) -> None:
        self.app = app
        self.observe = observe

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
            seconds = time.perf_counter() - started
            self.observe(scope, status, seconds)
            duration = seconds * 1000
            path = quote(scope["path"], safe="/!$&'()*+,;=:@-._~")
            access_log.info(
                '%s "%s %s" %d %.1fms',
                client[0],
                scope["method"],
                path,
                status,
                duration,
                extra={
                    "client": client[0],
                    "method": scope["method"],
                    "path": path,
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
        description=(
            "Passwordless sign-in: email link + code. JSON API for apps with their own UI. "
            f"Request bodies are at most {settings.max_body_bytes} bytes (else 413), and each "
            f"pause while one arrives at most {settings.body_read_timeout_seconds:g} s (else 408)."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        redirect_slashes=False,  # its redirect would be built from the Host header
        dependencies=[Depends(params.refuse_nul)],
    )
    app.state.sekisho = sekisho
    app.state.cookies = Cookies.for_settings(settings)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(passkeys_api.router)
    app.include_router(admin.router)
    app.include_router(recovery_pages.router)
    app.include_router(recovery_api.router)
    if settings.development:
        app.include_router(devmailbox.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if settings.development:
        app.add_middleware(DevelopmentOrigin, public_origin=settings.public_origin)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyReadTimeout, seconds=settings.body_read_timeout_seconds)
    app.add_middleware(HeadAsGet)
    app.add_middleware(DeviceCookie, cookies=app.state.cookies)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    request_metrics = metrics.install(app, settings, database, limits)
    app.add_middleware(AccessLog, observe=request_metrics.observe_request)
    tracing.install(app, settings)
    app.add_middleware(RequestIds, accept_header=settings.accept_request_id)
    return app
