"""The dashboard's "Services" panel: each service's health, CPU and memory.

``install_service_health(app, socketio, settings)``: once a dashboard asks (the socket.io event
``services``), a background task polls every ``POLL_EVERY_S`` seconds each service's ``/health`` and
``/metrics`` (``process_cpu_seconds_total``, ``process_resident_memory_bytes`` per worker), reads this
process's own figures directly, and pushes ``services`` to every dashboard. CPU % is the change of CPU time
over the wall time between two readings of the same worker (the first reading: the average since the
process started); a service with several workers (the webhook) shows their sum, over the workers seen in
the last minute (a scrape reaches one worker at a time).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Flask
from flask_socketio import SocketIO
from prometheus_client.process_collector import ProcessCollector

from shared.config import Settings
from shared.logs import log_event
from shared.metrics import scrape_samples

logger = logging.getLogger(__name__)
POLL_EVERY_S = 10.0
TIMEOUT_S = 3.0
WORKER_FORGOTTEN_S = 60.0
SELF = "websocket"
Samples = dict[str, list[tuple[dict[str, str], float]]]


def own_samples() -> Samples:
    """This process's ProcessCollector figures, in the shape of ``scrape_samples``."""
    samples: Samples = {}
    worker = str(os.getpid())
    for family in ProcessCollector(registry=None).collect():
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(({**sample.labels, "worker": worker}, sample.value))
    return samples


def _by_worker(samples: Samples, name: str) -> dict[str, float]:
    return {labels.get("worker", ""): value for labels, value in samples.get(name, [])}


def service_targets(settings: Settings) -> dict[str, str]:
    """The services the dashboard watches besides itself, by name: base URL."""
    return {"agent": settings.agent_url, "webhook": settings.webhook_url}


class ServiceMonitor:
    def __init__(
        self,
        targets: dict[str, str],
        *,
        timeout_s: float = TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        own: Callable[[], Samples] | None = own_samples,
    ) -> None:
        self.targets = {name: url.rstrip("/") for name, url in targets.items()}
        self.timeout_s, self._clock, self._own = timeout_s, clock, own
        self._session = requests.Session()
        self._previous: dict[tuple[str, str], tuple[float, float]] = {}  # (service, worker): (wall, cpu s)
        self._workers: dict[str, dict[str, tuple[float, float | None, float | None]]] = {}
        self.latest: dict[str, Any] = {"services": [], "checked_at": None}
        self._lock = threading.Lock()
        self._started = False

    # --- one round ----------------------------------------------------------------------------------------
    def poll(self) -> dict[str, Any]:
        services = [self._check(name, url) for name, url in self.targets.items()]
        if self._own is not None:
            services.append(self._entry(SELF, "ok", "", self._own()))
        self.latest = {"services": services, "checked_at": self._iso(self._clock())}
        return self.latest

    def _check(self, name: str, base: str) -> dict[str, Any]:
        status, detail = "down", ""
        try:
            health = self._session.get(f"{base}/health", timeout=self.timeout_s)
            body = (
                health.json() if health.headers.get("content-type", "").startswith("application/json") else {}
            )
            status = "ok" if health.status_code == 200 else "error"
            if status == "error":
                reason = body.get("reason") if isinstance(body, dict) else None
                detail = str(reason or f"/health answered {health.status_code}")[:200]
        except (requests.RequestException, ValueError) as exc:
            detail = f"unreachable: {type(exc).__name__}"
        samples: Samples = {}
        if status != "down":
            try:
                answer = self._session.get(f"{base}/metrics", timeout=self.timeout_s)
                if answer.status_code == 200:
                    samples = scrape_samples(answer.text)
            except (requests.RequestException, ValueError) as exc:
                log_event(logger, "service_metrics_failed", logging.WARNING, service=name, error=str(exc))
        return self._entry(name, status, detail, samples)

    def _entry(self, name: str, status: str, detail: str, samples: Samples) -> dict[str, Any]:
        now = self._clock()
        workers = self._workers.setdefault(name, {})
        cpu = {
            labels.get("worker", ""): value for labels, value in samples.get("process_cpu_seconds_total", [])
        }
        rss = {labels.get("worker", ""): v for labels, v in samples.get("process_resident_memory_bytes", [])}
        started = {labels.get("worker", ""): v for labels, v in samples.get("process_start_time_seconds", [])}
        for worker, seconds in cpu.items():
            previous = self._previous.get((name, worker))
            if previous is not None and now > previous[0]:
                percent: float | None = max(0.0, (seconds - previous[1]) / (now - previous[0]) * 100)
            elif worker in started and now > started[worker]:
                percent = seconds / (now - started[worker]) * 100
            else:
                percent = None
            self._previous[(name, worker)] = (now, seconds)
            workers[worker] = (now, percent, rss.get(worker))
        for worker in [w for w, (seen, _, _) in workers.items() if now - seen > WORKER_FORGOTTEN_S]:
            del workers[worker]
            self._previous.pop((name, worker), None)
        if status == "down":
            workers.clear()
        cpus = [c for _, c, _ in workers.values() if c is not None]
        memories = [m for _, _, m in workers.values() if m is not None]
        return {
            "name": name,
            "status": status,
            "detail": detail,
            "cpu_percent": round(sum(cpus), 2) if cpus else None,
            "rss_bytes": sum(memories) if memories else None,
            "workers": len(workers),
            "checked_at": self._iso(now),
        }

    @staticmethod
    def _iso(moment: float) -> str:
        return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")

    # --- the background task ------------------------------------------------------------------------------
    def run(self, emit: Callable[[dict[str, Any]], None], sleep: Callable[[float], None]) -> None:
        while True:
            try:
                emit(self.poll())
            except Exception as exc:  # the panel goes stale; the dashboard keeps serving
                log_event(
                    logger, "service_poll_failed", logging.WARNING, error=f"{type(exc).__name__}: {exc}"
                )
            sleep(POLL_EVERY_S)

    def start_once(self, socketio: SocketIO) -> bool:
        """Start the polling task the first time a dashboard asks (no dashboard open: no polling)."""
        with self._lock:
            if self._started:
                return False
            self._started = True
        socketio.start_background_task(self.run, lambda data: socketio.emit("services", data), socketio.sleep)
        return True


def install_service_health(app: Flask, socketio: SocketIO, settings: Settings) -> ServiceMonitor:
    """The ``services`` socket.io event (answered with the latest reading) and the polling behind it.
    Calling it again on the same app returns the monitor installed first."""
    installed: ServiceMonitor | None = app.extensions.get("bluefinai.services")
    if installed is not None:
        return installed
    monitor = ServiceMonitor(service_targets(settings))
    app.extensions["bluefinai.services"] = monitor

    @socketio.on("services")
    def services(_: Any = None) -> dict[str, Any]:
        monitor.start_once(socketio)
        return monitor.latest

    return monitor
