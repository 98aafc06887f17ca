"""Prometheus metrics (``prometheus_client``), one registry per app (docs/observability.md).

Invariant: nothing is exposed unless the operator turns it on: ``/metrics`` answers only
with ``metrics_token`` set, and only to ``Authorization: Bearer <metrics_token>``;
``metrics_port`` serves the same registry on a separate address (by default 127.0.0.1)
for a scraper that reaches that address only. Labels are bounded: route templates (never
raw paths), method names, limit names, event names; never an address, IP or id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import Scope

from sekisho.ratelimits import RateLimits
from sekisho.store.database import Database
from sekisho.store.observations import mail_queue

SIGN_IN_FAILURES = {
    "signin.email.failed": "email",
    "signin.password.failed": "password",
    "passkey.signin.failed": "passkey",
}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def sign_in_method(detail: Mapping[str, Any]) -> str:
    """``email``, ``passkey`` or ``password`` from the ``via`` of a sign-in event."""
    via = str(detail.get("via", ""))
    return via if via in ("passkey", "password") else "email"


class Metrics:
    """The app's registry: counters fed by the request path and by committed audit
    events, and gauges read when scraped (the mail queue, the pool, rate-limit refusals)."""

    def __init__(self, database: Database, limits: RateLimits) -> None:
        self.registry = CollectorRegistry()
        self.sign_ins = Counter(
            "sekisho_signins",
            "Sign-in attempts that ended, by method and outcome.",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.audit_events = Counter(
            "sekisho_audit_events",
            "Audit events committed by this process, by event and outcome.",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sekisho_http_request_duration_seconds",
            "Time to answer a request, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.responses = Counter(
            "sekisho_http_responses",
            "Responses by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.registry.register(_ScrapeTime(database, limits))
        #: Each (route, method, status)'s two series, looked up once: ``labels`` checks
        #: and locks on every call, about half of this method's cost per request.
        self._series: dict[tuple[str, str, int], tuple[Histogram, Counter]] = {}
        database.audit_listeners.append(self.count_audit_events)

    def observe_request(self, scope: Scope, status: int, seconds: float) -> None:
        """Time and count one answered request, labelled by the route template the router
        matched (``unmatched`` when none did). Called by the access log, which already
        times every request."""
        route = str(getattr(scope.get("route"), "path", "unmatched"))
        method = str(scope["method"])
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:
            series = (
                self.latency.labels(route, method),
                self.responses.labels(route, method, str(status)),
            )
            self._series[key] = series
        series[0].observe(seconds)
        series[1].inc()

    def count_audit_events(self, events: Iterable[Mapping[str, Any]]) -> None:
        for event in events:
            name, outcome = str(event["event"]), str(event["outcome"])
            self.audit_events.labels(name, outcome).inc()
            if name in ("signin.succeeded", "signin.rejected"):
                method = sign_in_method(json.loads(event["detail"]))
                self.sign_ins.labels(
                    method, "success" if outcome == "success" else "rejected"
                ).inc()
            elif name in SIGN_IN_FAILURES:
                self.sign_ins.labels(SIGN_IN_FAILURES[name], "failure").inc()


class _ScrapeTime(Collector):
    def __init__(self, database: Database, limits: RateLimits) -> None:
        self._database = database
        self._limits = limits

    def collect(self) -> Iterator[Metric]:
        refusals = CounterMetricFamily(
            "sekisho_rate_limit_refusals",
            "Requests refused by a rate limit in this process, by limit.",
            labels=["limit"],
        )
        for name, count in sorted(self._limits.refusals.items()):
            refusals.add_metric([name], count)
        yield refusals
        yield from _pool(self._database)
        yield from _mail(self._database)


def _pool(database: Database) -> Iterator[Metric]:
    pool = database.engine.pool
    for name, help_text, reading in (
        ("sekisho_db_pool_size", "Connections the pool keeps.", "size"),
        ("sekisho_db_pool_checked_out", "Connections in use.", "checkedout"),
        ("sekisho_db_pool_overflow", "Connections opened beyond the pool size.", "overflow"),
    ):
        value = getattr(pool, reading, None)
        if callable(value):
            yield GaugeMetricFamily(name, help_text, value=float(value()))


def _mail(database: Database) -> Iterator[Metric]:
    queue = mail_queue(database.engine)
    messages = GaugeMetricFamily(
        "sekisho_mail_outbox_messages",
        "Messages in the outbox by status (pending is the queue depth; failed gave up).",
        labels=["status"],
    )
    for status in ("pending", "sent", "dropped", "failed"):
        messages.add_metric([status], queue.by_status.get(status, 0))
    yield messages
    yield GaugeMetricFamily(
        "sekisho_mail_retrying_messages",
        "Pending messages that failed at least one delivery attempt.",
        value=queue.retrying,
    )
    age = (
        (datetime.now(UTC) - queue.oldest_pending_at).total_seconds()
        if queue.oldest_pending_at
        else 0.0
    )
    yield GaugeMetricFamily(
        "sekisho_mail_oldest_pending_age_seconds",
        "Age of the oldest pending message (0 when none is pending).",
        value=max(0.0, age),
    )
