"""Evidence for a stalled request: every thread's stack, printed while it stalls.

A live server in the tests runs in a thread of the test process, so when one request
takes seconds the stacks of all threads at that moment say where it waits (a lock, the
database, the thread pool, the event loop). The dump goes to stderr, which pytest shows
with a failing test. It observes only; it changes no timing the tests rely on.
"""

from __future__ import annotations

import faulthandler
import itertools
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

STALL_SECONDS = 2.5


class StallWatchdog:
    """Wraps an ASGI app; a daemon thread dumps all stacks once for each request that
    has been in flight longer than ``STALL_SECONDS``."""

    def __init__(self, app: App, label: str) -> None:
        self._app = app
        self._label = label
        self._in_flight: dict[int, tuple[float, str]] = {}
        self._reported: set[int] = set()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = next(self._ids)
        with self._lock:
            self._in_flight[request_id] = (
                time.monotonic(),
                f"{scope['method']} {scope['path']}",
            )
        try:
            await self._app(scope, receive, send)
        finally:
            with self._lock:
                started, request = self._in_flight.pop(request_id)
                self._reported.discard(request_id)
            spent = time.monotonic() - started
            if spent > STALL_SECONDS:
                print(
                    f"[stall watchdog {self._label}] {request} took {spent:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(0.25):
            now = time.monotonic()
            with self._lock:
                stalled = [
                    (request_id, request, now - started)
                    for request_id, (started, request) in self._in_flight.items()
                    if now - started > STALL_SECONDS and request_id not in self._reported
                ]
                self._reported.update(request_id for request_id, _, _ in stalled)
            if stalled:
                names = {thread.ident: thread.name for thread in threading.enumerate()}
                print(
                    f"[stall watchdog {self._label}] in flight: "
                    + ", ".join(f"{request} for {spent:.1f} s" for _, request, spent in stalled)
                    + f"; threads: {names}",
                    file=sys.stderr,
                    flush=True,
                )
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
