"""Log lines as text or as JSON objects (``log_format``), with the request's id.

Invariant: a JSON line is one object per line with ``time`` (UTC ISO 8601), ``level``,
``logger``, ``message``, ``request_id`` (inside a request) and the structured fields the
caller passed as ``extra`` (the access log: ``client``, ``method``, ``path``, ``status``,
``duration_ms``). Nothing is added that the caller did not log: the access log never has
a query string (SECURITY.md case 9).

The access log writes a line per request, so its record (:class:`AccessRecord`) is built
without the generic work of ``Logger.info`` (no caller lookup, which walks the stack; no
``%`` formatting; the source file's names computed once), and the text formatter formats
a record's time once per second. The lines are the same as ``logging``'s own.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Literal

from sekisho.core.request_ids import current_request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


class TextFormatter(logging.Formatter):
    """The text line, followed by ``[request id]`` inside a request. A record without an
    exception or stack is formatted as ``TEXT_FORMAT`` says without ``logging``'s
    generic template work, its time's ``strftime`` done once per second."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            stamp = time.strftime(self.default_time_format, self.converter(record.created))
            cached = self._second = (second, stamp)
        return f"{cached[1]},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            line = super().format(record)
        else:
            record.message = record.getMessage()
            record.asctime = self.formatTime(record)
            line = f"{record.asctime} {record.levelname} {record.name}: {record.message}"
        request_id = current_request_id()
        return f"{line} [{request_id}]" if request_id else line


_START: float = logging._startTime  # type: ignore[attr-defined]  # relativeCreated's origin
_HERE = os.path.normcase(__file__)
_FILENAME = os.path.basename(_HERE)
_MODULE = os.path.splitext(_FILENAME)[0]


class AccessRecord(logging.LogRecord):
    """One access log line's record: the attributes of any ``LogRecord`` (so every
    formatter and handler, pytest's capture included, reads it as one) and the structured
    fields, with the message already built. It names this module as its source."""

    def __init__(
        self, logger: str, client: str, method: str, path: str, status: int, duration_ms: float
    ) -> None:
        created = time.time()
        self.name = logger
        self.msg = f'{client} "{method} {path}" {status} {duration_ms:.1f}ms'
        self.args = None
        self.levelname = "INFO"
        self.levelno = logging.INFO
        self.pathname = _HERE
        self.filename = _FILENAME
        self.module = _MODULE
        self.exc_info = None
        self.exc_text = None
        self.stack_info = None
        self.lineno = 0
        self.funcName = "access"
        self.created = created
        self.msecs = int((created - int(created)) * 1000) + 0.0
        self.relativeCreated = (created - _START) * 1000
        self.thread = threading.get_ident()
        self.threadName = threading.current_thread().name
        self.processName, self.process = _process
        self.taskName = None  # Python 3.12's attribute (its asyncio task), not looked up
        self.client = client
        self.method = method
        self.path = path
        self.status = status
        self.duration_ms = round(duration_ms, 1)

    def getMessage(self) -> str:
        return str(self.msg)


def _process_name() -> str:
    """As ``LogRecord`` names the process."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return "MainProcess"
    try:
        return str(multiprocessing.current_process().name)
    except Exception:
        return "MainProcess"


_process = (_process_name(), os.getpid())
"""This process's name and id as its records carry them, read once (``getpid`` is a
system call), again in a forked child."""


def _named_process() -> None:
    global _process
    _process = (_process_name(), os.getpid())


os.register_at_fork(after_in_child=_named_process)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            document["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def configure(log_format: Literal["text", "json"]) -> None:
    """Send every logger's lines (uvicorn's too, when it is told not to configure its own)
    to stderr in ``log_format``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
