"""Prometheus metrics of a service: ``install_metrics(app, service, collectors)`` for a Flask app, the
``AsgiMetrics`` middleware for an ASGI one (the webhook).

``GET /metrics`` (text exposition, no auth: nginx does not proxy it) serves, for this process:

- ``bluefinai_http_requests_total{method,route,status}``, ``bluefinai_http_request_seconds{method,route}``
  (histogram), ``bluefinai_http_errors_total{method,route,status}`` (5xx); ``route`` is the URL rule
  (``/api/orders/<client_id>``; an ASGI app's routes are fixed paths), ``unmatched`` for a path no rule
  matches: the label set stays bounded;
- ``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ... (ProcessCollector);
- whatever ``collectors`` the service adds (the agent's trading metrics, read at scrape time).

Every sample carries ``service`` and ``worker`` (the process id). The webhook runs two gunicorn workers, each
with its own registry, and a scrape is answered by the worker that accepts it: the ``worker`` label keeps each
worker's counters a series of their own (never two processes' counters folded into one series that jumps
back and forth), so ``sum by (service) (rate(...[5m]))`` stays right; a worker that answered no scrape in the
window is missing from it until it does. (prometheus-client's multiprocess mode would merge the workers'
counters, but needs PROMETHEUS_MULTIPROC_DIR set and wiped by the process runner before gunicorn starts, and
it cannot report per-process CPU and memory.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

METRICS_PATH = "/metrics"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EXTENSION = "bluefinai.metrics"


class Labelled(Collector):
    """Another collector's metrics with constant labels added at scrape time (``worker`` = the pid of the
    process that answers, right after a fork too)."""

    def __init__(self, inner: Collector, service: str) -> None:
        self.inner, self.service = inner, service

    def collect(self) -> Iterator[Metric]:
        labels = {"service": self.service, "worker": str(os.getpid())}
        for family in self.inner.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            for sample in family.samples:
                labelled.add_sample(
                    sample.name, {**labels, **sample.labels}, sample.value, sample.timestamp, sample.exemplar
                )
            yield labelled


class ServiceMetrics:
    """The registry of one Flask app and its HTTP metrics."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.inner = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "bluefinai_http_requests", "HTTP requests answered", ("method", "route", "status"),
            registry=self.inner,
        )  # fmt: skip
        self.errors = Counter(
            "bluefinai_http_errors", "HTTP requests answered with a 5xx", ("method", "route", "status"),
            registry=self.inner,
        )  # fmt: skip
        self.latency = Histogram(
            "bluefinai_http_request_seconds", "Time to answer an HTTP request", ("method", "route"),
            buckets=LATENCY_BUCKETS, registry=self.inner,
        )  # fmt: skip
        ProcessCollector(registry=self.inner)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Labelled(self.inner, service))

    def add(self, collector: Collector) -> None:
        self.inner.register(collector)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if status >= 500:
            self.errors.labels(method, route, str(status)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def install_metrics(app: Flask, service: str, collectors: Iterable[Collector] = ()) -> ServiceMetrics:
    """Count and time every request of ``app`` and serve ``GET /metrics``. Calling it again on the same app
    only adds the new collectors."""
    metrics: ServiceMetrics | None = app.extensions.get(EXTENSION)
    if metrics is not None:
        for collector in collectors:
            metrics.add(collector)
        return metrics
    metrics = ServiceMetrics(service)
    for collector in collectors:
        metrics.add(collector)
    app.extensions[EXTENSION] = metrics

    def _start() -> None:
        g.bluefinai_started = time.perf_counter()

    def _finish(response: Response) -> Response:
        started = g.pop("bluefinai_started", None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.observe(request.method, route, response.status_code, seconds)
        return response

    def _metrics() -> Any:
        return Response(metrics.exposition(), mimetype=None, content_type=CONTENT_TYPE_LATEST)

    # first of the before-request hooks: an earlier hook that answers (a 401) is timed too
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    app.add_url_rule(METRICS_PATH, "bluefinai_metrics", _metrics, methods=["GET"])
    return metrics


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class AsgiMetrics:
    """ASGI middleware: count and time every HTTP request of ``app`` in ``metrics``. ``routes`` are the app's
    paths (any other is ``unmatched``); a request that raised is counted as the 500 it became."""

    def __init__(self, app: Asgi, metrics: ServiceMetrics, routes: Iterable[str]) -> None:
        self.app, self.metrics, self.routes = app, metrics, frozenset(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = scope["path"]
            route = path if path in self.routes else "unmatched"
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)


def scrape_samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Parse a text exposition into {sample name: [(labels, value), ...]} (the dashboard's poller, tests)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples
