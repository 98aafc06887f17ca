"""Playwright fixtures driving Debian's Chromium (no pytest-playwright, no downloads).

One Chromium per test module; every simulated device is a fresh browser context (its
own cookies, storage and language), closed at the end of the test. A missing Chromium
makes the tests fail, never skip.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.support.relying_party import Callback
from tests.support.server import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous enough for PostgreSQL on a busy machine and for wait.js's 1.5 s polling.
TIMEOUT_MS = 15_000

Device = Callable[..., Page]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        expect.set_options(timeout=TIMEOUT_MS)
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium is required for the browser tests and is missing: {CHROMIUM}")
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def callback() -> Iterator[Callback]:
    """A relying party's redirect URI on a real socket (``callback.redirect_uri``)."""
    receiver = Callback().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def device(chromium: Browser, server: LiveServer) -> Iterator[Device]:
    """Open a new simulated device: a fresh context with one page on ``server``.

    Keyword arguments go to ``Browser.new_context`` (``locale="ja-JP"``, ...).
    """
    contexts: list[BrowserContext] = []

    def open_device(**options: Any) -> Page:
        context = chromium.new_context(base_url=server.url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_device
    for context in contexts:
        context.close()
