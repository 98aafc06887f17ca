"""OpenTelemetry tracing (the option): spans go over real OTLP/HTTP to a receiver, carry
the request id, continue the caller's trace, and nothing is sent when tracing is off."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import ServerFactory
from tests.support.ports import free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class _Receiver(BaseHTTPRequestHandler):
    spans: queue.Queue[tuple[str, str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: a.value.string_value for a in span.attributes}
                    self.spans.put((span.name, span.trace_id.hex(), attributes))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[queue.Queue[tuple[str, str, dict[str, Any]]]]:
    port = free_port()
    spans: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()

    class Receiver(_Receiver):
        pass

    Receiver.spans = spans
    server = HTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    yield spans
    server.shutdown()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_request_becomes_a_span_with_its_request_id(
    make_server: ServerFactory, receiver: queue.Queue[tuple[str, str, dict[str, Any]]]
) -> None:
    server = make_server(tracing="otlp")
    with httpx.Client(base_url=server.url) as client:
        answered = client.get(
            "/signin/email/link?token=secret-token-value", headers={"traceparent": TRACEPARENT}
        )
    request_id = answered.headers["X-Request-ID"]
    seen: list[dict[str, Any]] = []
    while not any(attributes.get("sekisho.request_id") for attributes in seen):
        name, trace_id, attributes = receiver.get(timeout=30)
        seen.append(attributes)
    assert name == "GET /signin/email/link"
    assert trace_id == TRACE_ID
    assert attributes["sekisho.request_id"] == request_id
    assert attributes["http.url"] == f"{server.url}/signin/email/link"
    assert "secret-token-value" not in repr(seen)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_nothing_is_traced_by_default(
    make_server: ServerFactory, receiver: queue.Queue[tuple[str, str, dict[str, Any]]]
) -> None:
    server = make_server()
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/signin", headers={"traceparent": TRACEPARENT}).status_code == 200
    server.stop()
    assert receiver.empty()
