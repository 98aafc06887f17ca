"""The application built from the environment, for process managers that import it.

``uvicorn --factory sekisho.asgi:create`` (or gunicorn with uvicorn workers, or granian)
runs Sekisho with the same ``SEKISHO_*`` settings as ``sekisho serve``; each worker
process of ``sekisho serve --workers N`` is built here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def create() -> FastAPI:
    """One process's application; its access log goes to stderr, as with ``sekisho serve``.
    (The application is imported here, so that the CLI can share ``LOG_FORMAT`` cheaply.)"""
    from sekisho.app import create_app
    from sekisho.settings import Settings

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return create_app(Settings())
