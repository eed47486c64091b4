from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.events import EVENTS_PATH, EventPublisher
from shared.logs import configure_logging, log_event
from tests.conftest import free_port


class Recorder(BaseHTTPRequestHandler):
    """Keeps each posted event with the request's path and token; ``requests`` counts the POSTs."""

    received: list[tuple[str, str, dict[str, Any]]] = []
    requests = 0
    delay_s = 0.0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(Recorder.delay_s)
        Recorder.requests += 1
        for event in body["events"]:
            Recorder.received.append((self.path, self.headers.get("Authorization", ""), event))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def _publish_and_collect(count: int, delay_s: float) -> None:
    Recorder.received, Recorder.requests, Recorder.delay_s = [], 0, delay_s
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    publisher = EventPublisher(f"http://127.0.0.1:{server.server_port}", "secret-token-123")
    try:
        for i in range(count):
            publisher.publish("order", {"n": i})
        deadline = time.monotonic() + 5
        while len(Recorder.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        publisher.close()
        server.shutdown()


def test_events_are_posted_in_order_with_the_token() -> None:
    _publish_and_collect(5, 0.0)
    assert [body["data"]["n"] for _, _, body in Recorder.received] == [0, 1, 2, 3, 4]
    assert {path for path, _, _ in Recorder.received} == {EVENTS_PATH}
    assert {auth for _, auth, _ in Recorder.received} == {"Bearer secret-token-123"}


def test_events_queued_during_a_post_go_out_together_in_order() -> None:
    _publish_and_collect(300, 0.15)  # the first post is slow: the rest queue up behind it
    assert [body["data"]["n"] for _, _, body in Recorder.received] == list(range(300))
    assert Recorder.requests <= 3


def test_events_arriving_one_by_one_share_a_request_per_linger() -> None:
    """100 events 2 ms apart (200 ms) take about one request per BATCH_LINGER_S (20 ms), not one each."""
    Recorder.received, Recorder.requests, Recorder.delay_s = [], 0, 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    publisher = EventPublisher(f"http://127.0.0.1:{server.server_port}", "token")
    try:
        for i in range(100):
            publisher.publish("order", {"n": i})
            time.sleep(0.002)
        deadline = time.monotonic() + 5
        while len(Recorder.received) < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        publisher.close()
        server.shutdown()
    assert [body["data"]["n"] for _, _, body in Recorder.received] == list(range(100))
    assert 2 <= Recorder.requests <= 25


def test_a_down_websocket_service_never_blocks_the_publisher() -> None:
    publisher = EventPublisher(f"http://127.0.0.1:{free_port()}", "token")
    started = time.perf_counter()
    for i in range(100):
        publisher.publish("market", {"n": i})
    assert time.perf_counter() - started < 0.5
    publisher.close()


def test_unknown_event_names_are_refused() -> None:
    publisher = EventPublisher("http://127.0.0.1:9", "token")
    with pytest.raises(ValueError, match="unknown event"):
        publisher.publish("bogus", {})
    publisher.close()


def test_logs_are_json_lines_without_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "INFO", ["hunter2-super-secret"])
    logger = logging.getLogger("t")
    log_event(logger, "login", user="bob", token="hunter2-super-secret")
    logger.warning("raw message with hunter2-super-secret inside")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "login" and first["user"] == "bob" and first["service"] == "test"
    assert first["token"] == "***" and "hunter2" not in second["event"]
