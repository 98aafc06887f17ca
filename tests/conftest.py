"""Shared fixtures: a real SMTP server, a fresh database per test on SQLite and
PostgreSQL, and a live server on a real socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import FormBrowser
from tests.support.document_server import DocumentServer
from tests.support.ports import free_port
from tests.support.server import LiveServer, fresh_database, settings_for
from tests.support.smtp import SmtpCapture

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def smtp() -> Iterator[SmtpCapture]:
    capture = SmtpCapture()
    capture.start()
    yield capture
    capture.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def make_server(backend: str, smtp: SmtpCapture, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers with setting overrides; all share one fresh database and SMTP.

    ``host_name="localhost"`` makes the public origin (and the URL clients use)
    http://localhost:PORT, for browser WebAuthn: an IP address cannot be an RP ID.
    ``clock`` replaces the server's "now" (tests/support/clock.py).
    """
    started: list[LiveServer] = []
    with fresh_database(backend, tmp_path) as database_url:

        def factory(
            *,
            host_name: str = "127.0.0.1",
            clock: Callable[[], datetime] | None = None,
            **overrides: Any,
        ) -> LiveServer:
            port = free_port()
            smtp_port = overrides.pop("smtp_port", smtp.port)
            settings = settings_for(database_url, smtp_port, port, host_name, **overrides)
            server = LiveServer(settings, port, host_name, clock)
            started.append(server.start())
            return server

        yield factory
        for server in started:
            server.stop()


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server()


@pytest.fixture
def browsers(server: LiveServer) -> Iterator[Callable[..., FormBrowser]]:
    opened: list[FormBrowser] = []

    def open_browser(**kwargs: Any) -> FormBrowser:
        browser = FormBrowser(server.url, **kwargs)
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        browser.close()


@pytest.fixture
def documents() -> Iterator[DocumentServer]:
    """A relying party's documents (a JWK Set, a sector listing) on 127.0.0.1."""
    server = DocumentServer().start()
    yield server
    server.stop()
