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
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Error,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

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


#: Whether a page is rendering: its visibility, and whether an animation frame comes
#: within a second (Playwright's click waits for two frames to call an element stable).
RENDERING = """
() => new Promise((resolve) => {
  const state = { visibility: document.visibilityState, focus: document.hasFocus() };
  const timer = setTimeout(() => resolve({ ...state, frame: false }), 1000);
  requestAnimationFrame(() => { clearTimeout(timer); resolve({ ...state, frame: true }); });
})
"""


#: The call phase's report, kept on each test item by the hook below.
CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep the call phase's report on the test, for fixtures that explain a failure."""
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


def _explain_failure(request: pytest.FixtureRequest, contexts: list[BrowserContext]) -> None:
    """After a failed test, print where each page was and whether it still rendered:
    a click that never found its element stable (stop 17's CI) leaves no other trace."""
    report = request.node.stash.get(CALL_REPORT, None)
    if report is None or not report.failed:
        return
    for context in contexts:
        for page in context.pages:
            try:
                print(f"page {page.url}: {page.evaluate(RENDERING)}")
            except Error as error:
                print(f"page {page.url}: not evaluable ({error.message})")


@pytest.fixture
def device(
    chromium: Browser, server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Device]:
    """Open a new simulated device: a fresh context with one page on ``server``.

    Keyword arguments go to ``Browser.new_context`` (``locale="ja-JP"``, ...). After a
    failed test, each page's rendering state is printed (:func:`_explain_failure`).
    """
    contexts: list[BrowserContext] = []

    def open_device(**options: Any) -> Page:
        context = chromium.new_context(base_url=server.url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_device
    _explain_failure(request, contexts)
    for context in contexts:
        context.close()
