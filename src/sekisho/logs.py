"""Log lines as text or as JSON objects (``log_format``), with the request's id.

Invariant: a JSON line is one object per line with ``time`` (UTC ISO 8601), ``level``,
``logger``, ``message``, ``request_id`` (inside a request) and the structured fields the
caller passed as ``extra`` (the access log: ``client``, ``method``, ``path``, ``status``,
``duration_ms``). Nothing is added that the caller did not log: the access log never has
a query string (SECURITY.md case 9).
"""

from __future__ import annotations

import json
import logging
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
    """The text line, followed by ``[request id]`` inside a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = current_request_id()
        return f"{line} [{request_id}]" if request_id else line


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
