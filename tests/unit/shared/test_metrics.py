"""/metrics of a Flask service and of an ASGI one (prometheus-client), and the dashboard's service-health
poller."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, jsonify, request
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from werkzeug.serving import make_server

from dashboard.services import ServiceMonitor, own_samples
from shared.metrics import METRICS_PATH, AsgiMetrics, ServiceMetrics, install_metrics, scrape_samples
from tests.conftest import free_port


def make_app() -> Flask:
    app = Flask("metered")

    @app.before_request
    def _auth() -> Any:
        if request.path.startswith("/api/") and request.headers.get("Authorization") != "Bearer ok":
            return jsonify(error="unauthorized"), 401
        return None

    @app.get("/api/orders/<client_id>")
    def order(client_id: str) -> Any:
        return jsonify(client_id=client_id)

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("a bug")

    @app.get("/unavailable")
    def unavailable() -> Any:
        return jsonify(error="down"), 503

    @app.get("/health")
    def health() -> Any:
        return jsonify(status="ok")

    return app


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    matching = [v for got, v in samples.get(name, []) if all(got.get(k) == x for k, x in labels.items())]
    return sum(matching)


def scrape(client: Any) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return scrape_samples(response.text)  # Flask's test response and httpx's both have it


def test_requests_latency_and_errors_are_counted_by_route() -> None:
    app = make_app()
    install_metrics(app, "webhook")
    client = app.test_client()
    before = scrape(client)
    assert value(before, "bluefinai_http_requests_total", route="/api/orders/<client_id>") == 0
    for n in range(3):
        assert client.get(f"/api/orders/c{n}", headers={"Authorization": "Bearer ok"}).status_code == 200
    assert client.get("/api/orders/x").status_code == 401  # answered by an earlier before-request hook
    assert client.get("/no/such/path/123").status_code == 404
    assert client.get("/boom").status_code == 500
    assert client.get("/unavailable").status_code == 503
    assert client.open("/health", method="BREW").status_code == 405
    after = scrape(client)
    pid = str(os.getpid())
    ok = {"service": "webhook", "worker": pid, "method": "GET", "route": "/api/orders/<client_id>"}
    assert value(after, "bluefinai_http_requests_total", **ok, status="200") == 3
    assert value(after, "bluefinai_http_requests_total", **ok, status="401") == 1
    assert value(after, "bluefinai_http_request_seconds_count", **ok) == 4
    assert value(after, "bluefinai_http_request_seconds_sum", **ok) > 0
    assert value(after, "bluefinai_http_requests_total", route="unmatched", status="404") == 1
    assert value(after, "bluefinai_http_requests_total", method="other", route="unmatched", status="405") == 1
    assert not [got for got, _ in after["bluefinai_http_requests_total"] if "/no/such" in got["route"]]
    assert value(after, "bluefinai_http_errors_total", route="/boom", status="500") == 1
    assert value(after, "bluefinai_http_errors_total", route="/unavailable", status="503") == 1
    assert value(after, "bluefinai_http_errors_total") == 2  # the 4xx are no errors of ours
    assert (
        value(after, "bluefinai_http_requests_total", route="/metrics", status="200") == 1
    )  # the first scrape


def test_an_asgi_apps_requests_are_counted_by_route_a_raised_one_as_500() -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route
    from starlette.testclient import TestClient

    metrics = ServiceMetrics("webhook")

    async def ok(request: Request) -> Response:
        return JSONResponse({"status": "accepted"}, 202)

    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    async def page(request: Request) -> Response:
        return Response(metrics.exposition(), headers={"Content-Type": "text/plain; version=0.0.4"})

    routes = [Route("/webhook", ok, methods=["POST"]), Route("/boom", boom), Route(METRICS_PATH, page)]
    app = Starlette(routes=routes, middleware=[Middleware(AsgiMetrics, metrics=metrics, routes=["/webhook",
                    "/boom", METRICS_PATH])])  # fmt: skip
    client = TestClient(app, raise_server_exceptions=False)
    for _ in range(3):
        assert client.post("/webhook", content=b"{}").status_code == 202
    assert client.get("/webhook").status_code == 405
    assert client.get("/no/such/path/123").status_code == 404
    assert client.get("/boom").status_code == 500
    after = scrape(client)
    posted = {"service": "webhook", "worker": str(os.getpid()), "method": "POST", "route": "/webhook"}
    assert value(after, "bluefinai_http_requests_total", **posted, status="202") == 3
    assert value(after, "bluefinai_http_request_seconds_count", **posted) == 3
    assert value(after, "bluefinai_http_requests_total", method="GET", route="/webhook", status="405") == 1
    assert value(after, "bluefinai_http_requests_total", route="unmatched", status="404") == 1
    assert not [got for got, _ in after["bluefinai_http_requests_total"] if "/no/such" in got["route"]]
    assert value(after, "bluefinai_http_errors_total", route="/boom", status="500") == 1
    assert value(after, "bluefinai_http_errors_total") == 1


def test_process_cpu_and_memory_are_exposed_per_worker() -> None:
    app = make_app()
    install_metrics(app, "agent")
    samples = scrape(app.test_client())
    ((labels, rss),) = samples["process_resident_memory_bytes"]
    assert labels == {"service": "agent", "worker": str(os.getpid())}
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    assert abs(rss - pages * os.sysconf("SC_PAGE_SIZE")) < 50e6
    assert value(samples, "process_cpu_seconds_total") > 0


def test_extra_collectors_and_a_second_install() -> None:
    class Answer(Collector):
        def collect(self) -> Iterator[GaugeMetricFamily]:
            family = GaugeMetricFamily("bluefinai_answer", "The answer", labels=["kind"])
            family.add_metric(["test"], 42.0)
            yield family

    app = make_app()
    first = install_metrics(app, "agent")
    assert install_metrics(app, "agent", [Answer()]) is first  # no second /metrics route, no double count
    client = app.test_client()
    client.get("/health")
    text = client.get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["bluefinai_answer"].samples[0].labels == {"service": "agent", "worker": str(os.getpid()),
                                                              "kind": "test"}  # fmt: skip
    assert families["bluefinai_answer"].samples[0].value == 42.0
    assert value(scrape_samples(text), "bluefinai_http_requests_total", route="/health") == 1


class Served:
    """A Flask app on a real port (werkzeug, in a thread)."""

    def __init__(self, app: Flask) -> None:
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def services() -> Iterator[dict[str, Served]]:
    healthy = make_app()
    install_metrics(healthy, "agent")
    sick = Flask("sick")

    @sick.get("/health")
    def sick_health() -> Any:
        return jsonify(status="error", reason="engine loop stuck: no pass for 300 s"), 503

    install_metrics(sick, "webhook")
    served = {"agent": Served(healthy), "webhook": Served(sick)}
    yield served
    for s in served.values():
        s.close()


def test_the_monitor_reports_health_cpu_and_memory(services: dict[str, Served]) -> None:
    targets = {name: s.url for name, s in services.items()} | {"gone": f"http://127.0.0.1:{free_port()}"}
    monitor = ServiceMonitor(targets, timeout_s=2)
    first = {s["name"]: s for s in monitor.poll()["services"]}
    assert set(first) == {"agent", "webhook", "gone", "websocket"}
    assert first["agent"]["status"] == "ok" and first["agent"]["workers"] == 1
    assert first["webhook"]["status"] == "error"
    assert first["webhook"]["detail"] == "engine loop stuck: no pass for 300 s"
    assert first["gone"]["status"] == "down" and first["gone"]["cpu_percent"] is None
    assert first["gone"]["detail"].startswith("unreachable")
    own_rss = value(own_samples(), "process_resident_memory_bytes")
    for name in ("agent", "webhook", "websocket"):  # all served by this very process
        assert abs(first[name]["rss_bytes"] - own_rss) < 50e6
        assert first[name]["cpu_percent"] is not None and first[name]["cpu_percent"] >= 0
    busy_until = time.process_time() + 0.5
    while time.process_time() < busy_until:  # burn CPU: the next reading shows it
        pass
    second = {s["name"]: s for s in monitor.poll()["services"]}
    assert second["agent"]["cpu_percent"] > 20
    assert monitor.latest["services"] == list(second.values())
