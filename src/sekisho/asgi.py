"""The application built from the environment, for process managers that import it.

``uvicorn --factory sekisho.asgi:create`` (or gunicorn with uvicorn workers, or granian)
runs Sekisho with the same ``SEKISHO_*`` settings as ``sekisho serve``; each worker
process of ``sekisho serve --workers N`` is built here.
"""

from __future__ import annotations

from fastapi import FastAPI

from sekisho import logs
from sekisho.app import create_app
from sekisho.settings import Settings


def create() -> FastAPI:
    """One process's application; its logs go to stderr in the configured format
    (``log_format``), as with ``sekisho serve``."""
    settings = Settings()
    logs.configure(settings.log_format)
    return create_app(settings)
