from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from shared.db import SignalRow
from tests.conftest import PASSPHRASE, TOKEN, free_port
from tests.unit.webhook.client import client_db, webhook_client
from webhook.nudge import AgentNudger


class FakeAgent(BaseHTTPRequestHandler):
    nudges: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeAgent.nudges.append((self.headers.get("Authorization", ""), body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def make_client(make_settings: Any, agent_url: str) -> TestClient:
    return webhook_client(make_settings(agent_url=agent_url))


@pytest.fixture
def client(make_settings: Any) -> TestClient:
    return make_client(make_settings, f"http://127.0.0.1:{free_port()}")  # no agent listening


def post(client: TestClient, alert: dict[str, Any], content_type: str = "text/plain") -> Any:
    return client.post("/webhook", content=json.dumps(alert), headers={"Content-Type": content_type})


def stored(client: TestClient) -> int:
    db = client_db(client)
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(SignalRow)) or 0)


ALERT = {"passphrase": PASSPHRASE, "id": "a1", "symbol": "BTCUSDT.P", "action": "buy"}


def test_accepted_then_duplicate_with_the_first_id(client: TestClient) -> None:
    first = post(client, ALERT)
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    again = post(client, ALERT, content_type="application/json")
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "signal_id": first.json()["signal_id"]}
    assert stored(client) == 1


def test_same_body_without_id_is_a_duplicate(client: TestClient) -> None:
    alert = {k: v for k, v in ALERT.items() if k != "id"}
    assert post(client, alert).status_code == 202
    assert post(client, dict(reversed(list(alert.items())))).status_code == 200
    assert stored(client) == 1


def test_wrong_passphrase_401_stores_nothing(client: TestClient) -> None:
    response = post(client, {**ALERT, "passphrase": "not-the-passphrase"})
    assert response.status_code == 401 and response.json() == {"error": "unauthorized"}
    assert stored(client) == 0


def test_malformed_alerts_get_400_with_field_details_and_store_nothing(client: TestClient) -> None:
    response = post(client, {**ALERT, "action": "moon", "price": -3})
    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["details"]}
    assert fields == {"action", "price"}
    bad_json = client.post("/webhook", content="{not json", headers={"Content-Type": "text/plain"})
    assert bad_json.status_code == 400 and bad_json.json()["details"][0]["field"] == "body"
    assert stored(client) == 0


def test_bodies_over_64_kib_get_413(client: TestClient) -> None:
    response = post(client, {**ALERT, "padding": "x" * 65 * 1024})
    assert response.status_code == 413 and "64 KiB" in response.json()["error"]
    assert stored(client) == 0


def test_a_chunked_body_is_refused_once_it_passes_64_kib(client: TestClient) -> None:
    def chunks() -> Any:  # no Content-Length: the limit is found while reading
        yield json.dumps({**ALERT, "padding": ""})[:-2].encode()
        for _ in range(65):
            yield b"x" * 1024
        yield b'"}'

    response = client.post("/webhook", content=chunks())
    assert response.status_code == 413 and "64 KiB" in response.json()["error"]
    assert stored(client) == 0


def test_other_methods_get_405(client: TestClient) -> None:
    assert client.get("/webhook").status_code == 405


def test_unreachable_agent_does_not_slow_the_answer(client: TestClient) -> None:
    started = time.perf_counter()
    assert post(client, ALERT).status_code == 202
    assert time.perf_counter() - started < 1.0


def test_accepted_alert_nudges_the_agent_with_the_token(make_settings: Any) -> None:
    FakeAgent.nudges = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAgent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = make_client(make_settings, f"http://127.0.0.1:{server.server_port}")
        signal_id = post(client, ALERT).json()["signal_id"]
        deadline = time.monotonic() + 5
        while not FakeAgent.nudges and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        server.shutdown()
    assert FakeAgent.nudges == [(f"Bearer {TOKEN}", {"signal_id": signal_id})]


class SlowAgent(FakeAgent):
    def do_POST(self) -> None:
        time.sleep(0.2)
        super().do_POST()


def nudges_for(handler: type[FakeAgent], count: int, gap_s: float) -> list[tuple[str, Any]]:
    """Nudge signals 1..count, ``gap_s`` apart, to a fake agent; the nudges it got once the last arrived."""
    FakeAgent.nudges = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        nudger = AgentNudger(f"http://127.0.0.1:{server.server_port}", TOKEN)
        for signal_id in range(1, count + 1):
            nudger.nudge(signal_id)
            time.sleep(gap_s)
        deadline = time.monotonic() + 5
        while (not FakeAgent.nudges or FakeAgent.nudges[-1][1] != {"signal_id": count}) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)
    finally:
        server.shutdown()
    return list(FakeAgent.nudges)


def test_a_burst_of_nudges_folds_into_few_requests_ending_with_the_newest() -> None:
    nudges = nudges_for(SlowAgent, 50, 0.0)
    assert nudges[-1] == (f"Bearer {TOKEN}", {"signal_id": 50})
    assert len(nudges) <= 3  # one in flight while the rest arrive, then one for all of them


def test_steady_alerts_make_one_nudge_per_spacing_not_one_each() -> None:
    """60 alerts 2 ms apart (120 ms): about one nudge per 20 ms spacing, the last one carrying the newest."""
    nudges = nudges_for(FakeAgent, 60, 0.002)
    assert nudges[-1] == (f"Bearer {TOKEN}", {"signal_id": 60})
    assert 2 <= len(nudges) <= 20


def test_health_checks_the_database(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "service": "webhook"}
