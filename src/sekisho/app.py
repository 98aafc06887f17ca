"""``create_app(settings)``: the only place where the pieces are wired together."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.staticfiles import StaticFiles

from sekisho import __version__, heap, tracing
from sekisho.admin.api_keys import ApiKeyService
from sekisho.confirmation_service import ConfirmationService
from sekisho.core.keys import Keyring
from sekisho.mail.senders import make_sender
from sekisho.mail.worker import OutboxWorker
from sekisho.oidc import (
    authorize,
    discovery,
    introspection,
    logout,
    pushed,
    revocation,
    token,
    userinfo,
)
from sekisho.oidc.backchannel import BackchannelWorker
from sekisho.oidc.client_admin import ClientAdmin
from sekisho.oidc.connected_apps import ConnectedApps
from sekisho.oidc.provider import Provider
from sekisho.ratelimits import RateLimits
from sekisho.service import Sekisho, utc_now
from sekisho.settings import Settings
from sekisho.store.database import Database, make_engine
from sekisho.store.deployment import prepare
from sekisho.store.mail_health import MailHealth
from sekisho.web import (
    admin,
    admin_api,
    admin_recoveries,
    admin_recoveries_api,
    api,
    confirmation_pages,
    confirmations_api,
    connected_apps,
    devmailbox,
    email_change_api,
    email_change_pages,
    errors,
    exact_paths,
    health,
    metrics,
    pages,
    passkeys_api,
    recovery_api,
    recovery_pages,
)
from sekisho.web.cookies import Cookies
from sekisho.web.dev_origin import DevelopmentOrigin
from sekisho.web.devices import DeviceCookie
from sekisho.web.middleware import Edge

STATIC = Path(__file__).resolve().parent / "web" / "static"
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
#: Held while an app is assembled. FastAPI prepares routes (their parameter fields) inside
#: ``warnings.catch_warnings``, which swaps the process-wide warning filters: two
#: assemblies on two threads at once can leave one inside the other's filters, and then a
#: warning FastAPI meant to silence escapes (an error under ``-W error``). Apps built
#: together, such as in-process servers starting at once, are built one after the other.
_ASSEMBLY = threading.Lock()


def create_app(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now, settle_heap: bool = False
) -> FastAPI:
    """The app for ``settings``, every route prepared (``web/exact_paths.py``).
    ``settle_heap``: this process runs this app until it ends, so once started it
    freezes what it built (``sekisho.heap``); never in a process that builds many."""
    with _ASSEMBLY:
        return _assemble(settings, clock, settle_heap)


def _assemble(settings: Settings, clock: Callable[[], datetime], settle_heap: bool) -> FastAPI:
    database = Database(
        make_engine(settings.database_url), Keyring(settings.secret_key.get_secret_value())
    )
    limits = RateLimits(settings)
    sekisho = Sekisho(settings=settings, database=database, limits=limits, clock=clock)
    oidc = Provider(sekisho, database)

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
        await asyncio.to_thread(oidc.ensure_keys)
        await asyncio.to_thread(sekisho.tiers.apply_policy)
        worker_tasks: list[asyncio.Task[None]] = []
        if settings.mail_worker:
            worker = OutboxWorker(
                settings=settings,
                database=database,
                keys=sekisho.keys,
                sender=make_sender(settings, database),
                clock=sekisho.clock,
                policy=sekisho.completion.policy,
            )
            logouts = BackchannelWorker(
                settings=settings, database=database, keys=sekisho.keys, clock=sekisho.clock
            )
            worker_tasks.append(asyncio.create_task(worker.run(), name="sekisho-outbox"))
            worker_tasks.append(asyncio.create_task(logouts.run(), name="sekisho-logouts"))
        if settle_heap:
            heap.settle()
        try:
            yield
        finally:
            for worker_task in worker_tasks:
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
        # FastAPI's own OpenTelemetry layer: off with tracing off (nothing of OpenTelemetry
        # runs then, see sekisho.tracing); otherwise it checks the providers per request.
        telemetry=None if settings.tracing != "off" else _NO_TELEMETRY,
    )
    app.state.sekisho = sekisho
    app.state.oidc = oidc
    app.state.api_keys = ApiKeyService(database=database, keys=sekisho.keys, clock=clock)
    app.state.client_admin = ClientAdmin(database, sekisho.keys, oidc.fetcher)
    app.state.confirmations = ConfirmationService(oidc)
    app.state.connected_apps = ConnectedApps(database, clock)
    app.state.cookies = Cookies.for_settings(settings)
    app.state.mail_health = MailHealth(database)
    errors.install(app)
    # Starlette's router tries routes in order, so the sign-in and token endpoints come
    # first (docs/architecture.md); no path of a router here is matched by one before it.
    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(passkeys_api.router)
    app.include_router(confirmations_api.router)
    for oidc_router in (
        token.router,
        authorize.router,
        userinfo.router,
        discovery.router,
        pushed.router,
        revocation.router,
        introspection.router,
        logout.router,
    ):
        app.include_router(oidc_router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(admin_recoveries.router)
    app.include_router(admin_api.router)
    app.include_router(admin_recoveries_api.router)
    app.include_router(connected_apps.router)
    app.include_router(recovery_pages.router)
    app.include_router(recovery_api.router)
    app.include_router(email_change_api.router)
    app.include_router(email_change_pages.router)
    app.include_router(confirmation_pages.router)
    if settings.development:
        app.include_router(devmailbox.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # The router's own place for what runs before its routing: declared paths skip the
    # scan of every route (web/exact_paths.py).
    exact_paths.install(app.router)
    if settings.development:
        app.add_middleware(DevelopmentOrigin, public_origin=settings.public_origin)
    request_metrics = metrics.install(app, settings, database, limits)
    tracing.install(app, settings)
    app.add_middleware(
        Edge,
        accept_request_id=settings.accept_request_id,
        observe=request_metrics.observe_request,
        hsts=settings.secure_cookies,
        max_body_bytes=settings.max_body_bytes,
        body_read_seconds=settings.body_read_timeout_seconds,
        refuse=errors.refuse_at_edge,
        device_cookie=DeviceCookie(app.state.cookies),
    )
    return app
