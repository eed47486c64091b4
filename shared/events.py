"""Events from the agent to the websocket service (HTTP POST, fire-and-forget, never blocking the engine).

Event names the dashboard understands: ``market``, ``signal``, ``decision``, ``order``, ``position``,
``trade``, ``status``, ``risk``.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import requests

from shared.logs import log_event

EVENTS_PATH = "/internal/events"
EVENT_NAMES = frozenset({"market", "signal", "decision", "order", "position", "trade", "status", "risk"})

logger = logging.getLogger(__name__)


class EventPublisher:
    """Queues events and posts them in order from a background thread.

    If the websocket service is down, events are dropped (the journal in the database keeps them) and a
    warning is logged once per outage.
    """

    def __init__(self, base_url: str, token: str, max_queue: int = 10_000, timeout_s: float = 2.0) -> None:
        self._url = base_url.rstrip("/") + EVENTS_PATH
        self._headers = {"Authorization": f"Bearer {token}"}
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(max_queue)
        self._timeout = timeout_s
        self._session = requests.Session()
        self._down = False
        self._thread = threading.Thread(target=self._run, name="event-publisher", daemon=True)
        self._thread.start()

    def publish(self, name: str, data: dict[str, Any]) -> None:
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown event name {name!r}")
        try:
            self._queue.put_nowait((name, data))
        except queue.Full:
            log_event(logger, "event_dropped_queue_full", logging.WARNING, event_name=name)

    def close(self, timeout_s: float = 2.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            name, data = item
            try:
                response = self._session.post(
                    self._url,
                    json={"event": name, "data": data},
                    headers=self._headers,
                    timeout=self._timeout,
                )
                response.raise_for_status()
                if self._down:
                    log_event(logger, "websocket_service_back")
                self._down = False
            except requests.RequestException as exc:
                if not self._down:
                    log_event(logger, "websocket_service_unreachable", logging.WARNING, error=str(exc))
                self._down = True
