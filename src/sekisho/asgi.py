"""The application built from the environment, for process managers that import it.

``uvicorn --factory sekisho.asgi:create`` (or gunicorn with uvicorn workers, or granian)
runs Sekisho with the same ``SEKISHO_*`` settings as ``sekisho serve``; each worker
process of ``sekisho serve --workers N`` is built here.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from sekisho import logs
from sekisho.app import create_app
from sekisho.settings import Settings
from sekisho.web.proxies import behind_proxies


def create() -> ASGIApp:
    """One process's application; its logs go to stderr in the configured format
    (``log_format``), as with ``sekisho serve``. It takes the client address from the
    proxies in ``forwarded_allow_ips`` itself, so the server running it need not (with
    uvicorn, ``--no-proxy-headers``)."""
    settings = Settings()
    logs.configure(settings.log_format)
    return behind_proxies(create_app(settings, settle_heap=True), settings)
