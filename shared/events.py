"""Events from the agent to the websocket service (HTTP POST, fire-and-forget, never blocking the engine).

Events waiting in the queue when the publisher is free go out together, in order, as one
``{"events": [{"event": ..., "data": ...}, ...]}`` request: a burst of decisions costs the agent one HTTP
round trip instead of one per event (posting them one by one was a quarter of the agent's CPU at 200
alerts/s). A single ``{"event": ..., "data": ...}`` is still accepted.

Event names the dashboard understands: ``market``, ``signal``, ``decision``, ``order``, ``position``,
``trade``, ``status``, ``risk``, ``liquidation_alert`` (a position's mark near its liquidation price, or
back out: ``agent.engine.liquidation_alert``) and ``log`` (a service's warning or error: ``shared.log_feed``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from shared.errors import Temporary
from shared.json_post import JsonPoster
from shared.logs import log_event

EVENTS_PATH = "/internal/events"
MAX_BATCH = 500  # events per request at most
# after the first event, how long the publisher waits for more before it posts: at most one request per
# BATCH_LINGER_S whatever the event rate (each request costs both services more than its events), for a
# dashboard that sees an event at most that much later
BATCH_LINGER_S = 0.02
EVENT_NAMES = frozenset(
    {
        "market",
        "signal",
        "decision",
        "order",
        "position",
        "trade",
        "status",
        "risk",
        "liquidation_alert",
        "log",
    }
)

logger = logging.getLogger(__name__)


def read_events(body: Any) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The events of a posted body (one ``{"event", "data"}`` or ``{"events": [...]}``) and the problems
    that refuse it whole: an unknown name or a non-object ``data`` anywhere, or more than MAX_BATCH."""
    if isinstance(body, dict) and "events" in body:
        events = body["events"]
        if not isinstance(events, list) or not 0 < len(events) <= MAX_BATCH:
            return [], [{"field": "events", "message": f"must be a list of 1 to {MAX_BATCH} events"}]
        prefixes = [f"events[{index}]." for index in range(len(events))]
    else:
        events, prefixes = [body], [""]
    for event, prefix in zip(events, prefixes, strict=True):
        if not isinstance(event, dict) or event.get("event") not in EVENT_NAMES:
            names = ", ".join(sorted(EVENT_NAMES))
            return [], [{"field": prefix + "event", "message": f"must be one of {names}"}]
        if not isinstance(event.get("data"), dict):
            return [], [{"field": prefix + "data", "message": "must be an object"}]
    return events, []


class EventPublisher:
    """Queues events and posts them in order from a background thread.

    If the websocket service is down, events are dropped (the journal in the database keeps them) and a
    warning is logged once per outage.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        max_queue: int = 10_000,
        timeout_s: float = 2.0,
        linger_s: float = BATCH_LINGER_S,
    ) -> None:
        self._linger_s = linger_s
        self._poster = JsonPoster(
            base_url.rstrip("/") + EVENTS_PATH, {"Authorization": f"Bearer {token}"}, timeout_s
        )
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(max_queue)
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

    def _next_batch(self) -> tuple[list[dict[str, Any]], bool]:
        """Wait for one event, then take what else arrives within BATCH_LINGER_S (up to MAX_BATCH), in
        order; the flag says the publisher was closed."""
        batch: list[dict[str, Any]] = []
        item = self._queue.get()
        deadline = time.monotonic() + self._linger_s
        while item is not None:
            batch.append({"event": item[0], "data": item[1]})
            if len(batch) >= MAX_BATCH:
                return batch, False
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return batch, False
        return batch, True

    def _run(self) -> None:
        while True:
            batch, closed = self._next_batch()
            if batch:
                self._post(batch)
            if closed:
                return

    def _post(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._poster.post({"events": batch})
            if self._down:
                log_event(logger, "websocket_service_back")
            self._down = False
        except Temporary as exc:
            if not self._down:
                log_event(logger, "websocket_service_unreachable", logging.WARNING, error=str(exc))
            self._down = True
