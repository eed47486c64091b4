"""Warnings and errors as ``log`` events: scrubbed, bounded, never the poster's own records."""

from __future__ import annotations

import logging
import threading
from typing import Any

from shared.events import EVENT_NAMES
from shared.log_feed import EventLogHandler
from shared.logs import _SECRETS, log_event


def feed(published: list[tuple[str, dict[str, Any]]]) -> tuple[logging.Logger, EventLogHandler]:
    handler = EventLogHandler(lambda name, data: published.append((name, data)), "agent", max_line_bytes=600)
    logger = logging.getLogger("tests.log_feed")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger, handler


def test_warnings_and_errors_are_published_as_log_events() -> None:
    published: list[tuple[str, dict[str, Any]]] = []
    logger, handler = feed(published)
    _SECRETS[:] = ["s3cret-token-value"]
    try:
        log_event(logger, "order_filled", symbol="BTC-PERP")  # INFO: not published
        log_event(logger, "algo_vetoed", logging.WARNING, rule="max_position", reason="too big")
        log_event(logger, "exchange_down", logging.ERROR, error="401 for s3cret-token-value", body="x" * 5000)
    finally:
        _SECRETS.clear()
        logger.removeHandler(handler)
    assert "log" in EVENT_NAMES
    assert [(name, data["event"], data["level"]) for name, data in published] == [
        ("log", "algo_vetoed", "warning"),
        ("log", "exchange_down", "error"),
    ]
    warning, error = (data for _, data in published)
    assert warning["rule"] == "max_position" and warning["service"] == "agent" and warning["ts"]
    assert "s3cret-token-value" not in str(error) and "***" in error["error"]
    assert error["truncated"] is True and len(error["body"]) < 600


def test_the_posters_own_records_and_nested_ones_are_not_published() -> None:
    published: list[tuple[str, dict[str, Any]]] = []

    def publish(name: str, data: dict[str, Any]) -> None:
        published.append((name, data))
        logging.getLogger("tests.log_feed").warning("while publishing")  # would recurse

    handler = EventLogHandler(publish, "agent")
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logging.getLogger("shared.events").warning("websocket_service_unreachable")
        poster = threading.Thread(
            target=lambda: logging.getLogger("tests.log_feed").warning("on the poster"),
            name="event-publisher",
        )
        poster.start()
        poster.join()
        logging.getLogger("tests.log_feed").warning("first")
    finally:
        root.removeHandler(handler)
    assert [data["event"] for _, data in published] == ["first"]
