"""The walking skeleton end to end: alert through nginx -> paper order, visible over socket.io."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Any

import pytest
import requests
import socketio

from tests.conftest import TOKEN, wait_for
from tests.stack import RunningStack

pytestmark = pytest.mark.integration


def orders_for(stack: RunningStack, signal_id: int) -> list[dict[str, Any]]:
    """The entry orders a signal made (its stops and targets carry its id too)."""
    response = stack.api(f"/api/orders?signal_id={signal_id}")
    assert response.status_code == 200
    return [o for o in response.json()["orders"] if o["role"] == "entry"]


def connect_socket(stack: RunningStack) -> tuple[socketio.Client, list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []
    lock = threading.Lock()
    client = socketio.Client(reconnection=False)

    @client.on("order")
    def _on_order(data: dict[str, Any]) -> None:
        with lock:
            received.append(data)

    client.connect(stack.base, transports=["websocket"], auth={"token": TOKEN}, wait_timeout=10)
    assert client.transport() == "websocket"
    return client, received


def test_alert_through_nginx_becomes_one_paper_order_seen_live(stack: RunningStack) -> None:
    client, order_events = connect_socket(stack)
    try:
        alert = {"id": "tv-1", "symbol": "BINANCE:BTCUSDT.P", "action": "buy", "strategy": "skeleton"}
        response = stack.alert(alert)
        assert response.status_code == 202, response.text
        signal_id = response.json()["signal_id"]

        orders = wait_for(lambda: [o for o in orders_for(stack, signal_id) if o["status"] == "FILLED"])
        (order,) = orders
        assert order["signal_id"] == signal_id and order["side"] == "BUY" and order["symbol"] == "BTC-PERP"
        assert order["client_id"].startswith("bfa-") and order["quantity"] > 0 and order["price"] > 0
        wait_for(
            lambda: any(
                e["client_id"] == order["client_id"] and e["status"] == "FILLED" for e in order_events
            )
        )

        again = stack.alert(alert)
        assert again.status_code == 200 and again.json() == {"status": "duplicate", "signal_id": signal_id}
        time.sleep(1.0)
        assert len(orders_for(stack, signal_id)) == 1
        positions = stack.api("/api/positions").json()["positions"]
        assert [p["quantity"] for p in positions] == [order["quantity"]]
    finally:
        client.disconnect()


def test_wrong_passphrase_is_refused_and_stores_nothing(stack: RunningStack) -> None:
    before = stack.api("/api/signals").json()["signals"]
    response = stack.alert(
        {"id": "tv-bad", "symbol": "BTC-PERP", "action": "buy"}, passphrase="wrong-passphrase!"
    )
    assert response.status_code == 401
    assert stack.api("/api/signals").json()["signals"] == before
    assert requests.get(f"{stack.base}/api/orders", timeout=5).status_code == 401


def test_socket_without_token_is_refused(stack: RunningStack) -> None:
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(stack.base, transports=["websocket"], auth={"token": "wrong"}, wait_timeout=5)


def test_alert_sent_while_the_agent_is_down_is_traded_when_it_starts(stack: RunningStack) -> None:
    stack.stop("agent")
    response = stack.alert({"id": "tv-offline", "symbol": "BTCUSDT", "action": "sell"})
    assert response.status_code == 202
    signal_id = response.json()["signal_id"]
    stack.start("agent")
    (order,) = wait_for(lambda: [o for o in orders_for(stack, signal_id) if o["status"] == "FILLED"])
    assert order["side"] == "SELL"
    stack.stop("agent")
    stack.start("agent")  # a restart does not process the signal again
    time.sleep(1.0)
    assert len(orders_for(stack, signal_id)) == 1


def test_healthcheck_script_names_the_failing_service(stack: RunningStack) -> None:
    from shared.config import PROJECT_ROOT

    env = {
        "PATH": os.environ["PATH"], "HEALTHCHECK_IGNORE_ENV": "1",
        "AGENT_URL": f"http://127.0.0.1:{stack.specs['agent'].port}",
        "WEBHOOK_URL": f"http://127.0.0.1:{stack.specs['webhook'].port}",
        "SOCKET_URL": f"http://127.0.0.1:{stack.specs['websocket'].port}",
        "NGINX_URL": stack.base,
    }  # fmt: skip
    script = str(PROJECT_ROOT / "healthcheck.sh")
    healthy = subprocess.run([script], env=env, capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert (
        healthy.returncode == 0 and sum(line.startswith("ok ") for line in healthy.stdout.splitlines()) == 4
    ), healthy.stdout
    stack.stop("webhook")
    broken = subprocess.run([script], env=env, capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert broken.returncode == 1 and "unhealthy: webhook" in broken.stderr
    assert "FAILED  webhook" in broken.stdout and "ok      agent" in broken.stdout
