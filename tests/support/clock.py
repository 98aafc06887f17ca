"""A clock a test moves forward: the server reads it for every "now" it decides by."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SettableClock:
    """The real time plus an offset the test advances; never goes back.

    Passed to ``create_app(clock=...)`` so that session limits, link lifetimes and
    every other server-side deadline are judged at the time the test chose, with no
    sleep.
    """

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, by: timedelta) -> None:
        if by < timedelta(0):
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._offset += by
