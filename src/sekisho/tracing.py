"""OpenTelemetry tracing, an option (``tracing = "otlp"``, the ``otel`` extra;
docs/observability.md).

Invariant: with tracing off (the default) nothing of OpenTelemetry is imported or run.
With ``otlp``, every HTTP request is a server span (W3C ``traceparent`` from the caller
is continued) carrying the request's id as ``sekisho.request_id``, exported in batches
over OTLP/HTTP to the endpoint the standard ``OTEL_EXPORTER_OTLP_*`` variables name.
Spans hold the route and status, never a query string or a header value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from sekisho import __version__
from sekisho.core.request_ids import current_request_id
from sekisho.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.trace import Span

EXCLUDED = "healthz,readyz,metrics,static"


def install(app: FastAPI, settings: Settings) -> None:
    if settings.tracing == "off":
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as error:
        raise RuntimeError(
            "tracing = otlp needs OpenTelemetry: pip install 'sekisho[otel]'"
        ) from error
    provider = TracerProvider(
        resource=Resource.create({"service.name": "sekisho", "service.version": __version__})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    origin = settings.public_origin

    def without_query(span: Span, scope: dict[str, Any]) -> None:
        """The instrumentation records the full URL, query included; emailed links carry
        their token in the query (SECURITY.md case 9), so the URL is replaced by the
        public origin and the path, and the query by nothing."""
        if span.is_recording():
            url = origin + str(scope.get("path", ""))
            span.set_attributes({"http.url": url, "url.full": url})
            if scope.get("query_string"):
                span.set_attribute("url.query", "")

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED,
        server_request_hook=without_query,
    )
    app.add_middleware(SpanRequestId)


class SpanRequestId:
    """Puts the request id on the request's server span (inside ``web.middleware.Edge``,
    which sets it, and inside the OpenTelemetry middleware, which opens the span)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            from opentelemetry import trace

            request_id = current_request_id()
            if request_id:
                trace.get_current_span().set_attribute("sekisho.request_id", request_id)
        await self.app(scope, receive, send)
