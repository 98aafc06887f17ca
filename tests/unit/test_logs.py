from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from sekisho.core.request_ids import enter_request, leave_request
from sekisho.logs import TEXT_FORMAT, AccessRecord, JsonFormatter, TextFormatter
from sekisho.web.middleware import Edge, access_log

REQUEST_ID = "0123456789abcdef0123456789abcdef"


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[_Kept]:
    handler = _Kept()
    access_log.addHandler(handler)
    level = access_log.level
    try:
        yield handler
    finally:
        access_log.removeHandler(handler)
        access_log.setLevel(level)


def _edge(observed: list[tuple[int, float]]) -> Edge:
    async def app(*_: object) -> None:
        return None

    async def refuse(*_: object) -> None:
        return None

    return Edge(
        app,
        accept_request_id=False,
        observe=lambda _scope, status, seconds: observed.append((status, seconds)),
        hsts=False,
        max_body_bytes=1024,
        body_read_seconds=1.0,
        refuse=refuse,
        device_cookie=lambda _scope: None,
    )


def _scope(path: str) -> dict[str, object]:
    return {"type": "http", "method": "POST", "path": path, "client": ("192.0.2.7", 5555)}


def test_an_access_record_has_every_attribute_of_a_log_record() -> None:
    plain = logging.LogRecord("sekisho.access", logging.INFO, __file__, 1, "x", None, None)
    record = AccessRecord("sekisho.access", "192.0.2.7", "GET", "/healthz", 200, 1.25)
    assert set(vars(plain)) <= set(vars(record))
    assert record.getMessage() == '192.0.2.7 "GET /healthz" 200 1.2ms'
    assert logging.Formatter().format(record) == record.getMessage()


def test_the_text_line_is_the_one_logging_formats() -> None:
    generic = logging.Formatter(TEXT_FORMAT)
    formatter = TextFormatter()
    records = [
        logging.LogRecord("sekisho.mail", logging.WARNING, __file__, 1, "%s left", ("3",), None),
        AccessRecord("sekisho.access", "192.0.2.7", "GET", "/healthz", 200, 0.04),
    ]
    later = AccessRecord("sekisho.access", "192.0.2.7", "GET", "/", 404, 3.0)
    later.created += 1.5
    later.msecs = 500.0
    token = enter_request(REQUEST_ID)
    try:
        for record in [*records, later, records[0]]:
            assert formatter.format(record) == f"{generic.format(record)} [{REQUEST_ID}]"
    finally:
        leave_request(token)
    assert formatter.format(records[0]) == generic.format(records[0])


def test_the_access_line_carries_its_fields_and_no_line_break(kept: _Kept) -> None:
    observed: list[tuple[int, float]] = []
    access_log.setLevel(logging.INFO)
    _edge(observed)._log(_scope('/api/v1/x\r\n127.0.0.1 "GET /admin" 200'), 200, 0.0123)
    (record,) = kept.records
    assert record.getMessage() == (
        '192.0.2.7 "POST /api/v1/x%0D%0A127.0.0.1%20%22GET%20/admin%22%20200" 200 12.3ms'
    )
    document = json.loads(JsonFormatter().format(record))
    assert {key: document[key] for key in ("logger", "level", "client", "method", "status")} == {
        "logger": "sekisho.access",
        "level": "INFO",
        "client": "192.0.2.7",
        "method": "POST",
        "status": 200,
    }
    assert document["duration_ms"] == 12.3
    assert document["path"] == "/api/v1/x%0D%0A127.0.0.1%20%22GET%20/admin%22%20200"
    assert observed == [(200, 0.0123)]


def test_a_disabled_access_log_still_feeds_the_metrics(kept: _Kept) -> None:
    observed: list[tuple[int, float]] = []
    access_log.setLevel(logging.WARNING)
    _edge(observed)._log(_scope("/healthz"), 200, 0.001)
    assert kept.records == []
    assert observed == [(200, 0.001)]
