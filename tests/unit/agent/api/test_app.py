"""The agent API through Flask's test client (engine built but not started: steps are driven here)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from agent.api.app import create_app
from agent.engine.engine import Engine
from shared.db import Database, SignalRow
from tests.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def add_signal(client: FlaskClient, key: str, action: str = "buy") -> int:
    db: Database = client.application.extensions["db"]
    with db.session() as session:
        row = SignalRow(idempotency_key=key, source="tradingview", symbol="BTC-PERP", action=action, raw={})
        session.add(row)
        session.flush()
        return row.id


def test_everything_under_api_needs_the_token(client: FlaskClient) -> None:
    for path in (
        "/api/status",
        "/api/signals",
        "/api/orders",
        "/api/positions",
        "/api/trades",
        "/api/decisions",
        "/api/funding",
    ):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer wrong-token-xxxxx"}).status_code == 401
        assert client.get(path, headers=AUTH).status_code == 200
    assert client.post("/internal/nudge").status_code == 401
    assert client.get("/health").status_code == 200


def test_orders_are_filtered_by_signal(client: FlaskClient) -> None:
    engine: Engine = client.application.extensions["engine"]
    first = add_signal(client, "a")
    engine.process_pending_signals()
    second = add_signal(client, "b", "close")
    engine.process_pending_signals()
    orders = client.get(f"/api/orders?signal_id={first}", headers=AUTH).get_json()["orders"]
    (order,) = [o for o in orders if o["role"] == "entry"]
    assert order["signal_id"] == first and order["status"] == "FILLED"
    # the entry's protective orders belong to the same signal (cancelled by the close)
    assert {(o["role"], o["status"]) for o in orders if o["role"] != "entry"} == {
        ("stop_loss", "CANCELED"),
        ("partial_take_profit", "CANCELED"),
    }
    assert {"client_id", "status", "side", "quantity", "price"} <= set(order)
    (close,) = client.get(f"/api/orders?signal_id={second}", headers=AUTH).get_json()["orders"]
    assert close["side"] == "SELL" and close["reduce_only"] and close["exit_kind"] == "close_signal"
    signals = client.get("/api/signals", headers=AUTH).get_json()["signals"]
    assert [s["status"] for s in signals] == ["traded", "traded"]
    assert len(client.get("/api/trades", headers=AUTH).get_json()["trades"]) == 1


def test_bad_query_values_get_a_400_naming_the_field(client: FlaskClient) -> None:
    response = client.get("/api/orders?signal_id=abc", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["details"][0]["field"] == "signal_id"
    assert client.get("/api/orders?limit=0", headers=AUTH).status_code == 400


def test_status_reports_engine_and_redacted_config(client: FlaskClient) -> None:
    body = client.get("/api/status", headers=AUTH).get_json()
    assert body["engine"]["state"] == "running" and body["engine"]["feed"] == {"BTC-PERP": "replay"}
    assert body["engine"]["prices"]["BTC-PERP"] > 0
    assert body["config"]["API_TOKEN"] == "***" and TOKEN not in str(body)


def test_market_snapshot_across_timeframes(client: FlaskClient) -> None:
    (market,) = client.get("/api/market", headers=AUTH).get_json()["markets"]
    assert market["symbol"] == "BTC-PERP" and market["source"] == "replay" and market["price"] > 0
    assert set(market["timeframes"]) == {"1m", "5m", "15m", "1h", "4h", "1d"}
    assert market["timeframes"]["1m"]["candles"] == 300
    assert market["timeframes"]["1m"]["indicators"]["rsi"] is not None


def test_correlation_across_symbols(make_settings: Any) -> None:
    settings = make_settings(
        socket_url="http://127.0.0.1:9", symbols="BTC-PERP,ETH-PERP", market_data_source="synthetic"
    )
    app = create_app(settings, start_engine=False)
    engine: Engine = app.extensions["engine"]
    engine.prepare()
    body = app.test_client().get("/api/market", headers=AUTH).get_json()
    assert [m["source"] for m in body["markets"]] == ["synthetic", "synthetic"]
    matrix = body["correlation"]
    assert matrix["BTC-PERP"]["BTC-PERP"] == 1.0 and -1 <= matrix["BTC-PERP"]["ETH-PERP"] <= 1


def test_algos_api(client: FlaskClient) -> None:
    assert client.post("/api/algos", json={"kind": "twap"}).status_code == 401
    bad = client.post(
        "/api/algos",
        json={"kind": "iceberg", "symbol": "BTC-PERP", "side": "buy", "quantity": 0.01},
        headers=AUTH,
    )
    assert bad.status_code == 400 and {d["field"] for d in bad.get_json()["details"]} == {
        "visible_quantity",
        "limit_price",
    }
    too_big = client.post(
        "/api/algos", json={"kind": "twap", "symbol": "BTCUSDT", "side": "buy", "quantity": 5}, headers=AUTH
    )
    assert too_big.status_code == 400 and too_big.get_json()["error"] == "vetoed by risk"
    started = client.post(
        "/api/algos",
        json={
            "kind": "twap",
            "symbol": "BTCUSDT",
            "side": "buy",
            "quantity": 0.02,
            "slices": 2,
            "duration_s": 600,
        },
        headers=AUTH,
    )
    assert started.status_code == 201
    algo = started.get_json()
    assert algo["status"] == "RUNNING" and algo["slices_sent"] == 1 and algo["symbol"] == "BTC-PERP"
    cancelled = client.post(f"/api/algos/{algo['id']}/cancel", headers=AUTH).get_json()
    assert cancelled["status"] == "CANCELED"
    assert client.get("/api/algos/nope", headers=AUTH).status_code == 404


def test_funding_payments_are_listed_newest_first_with_their_total(client: FlaskClient) -> None:
    from datetime import UTC, datetime, timedelta

    from shared.db import FundingRow

    db: Database = client.application.extensions["db"]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session() as session:
        session.add(
            FundingRow(key="BTC-PERP:1", symbol="BTC-PERP", amount=-1.25, rate=0.0001, side="LONG", time=at)
        )
        session.add(FundingRow(key="BTC-PERP:2", symbol="BTC-PERP", amount=0.5, rate=-0.00004, side="LONG",
                               time=at + timedelta(hours=1)))  # fmt: skip
    body = client.get("/api/funding", headers=AUTH).get_json()
    assert [p["amount"] for p in body["funding"]] == [0.5, -1.25] and body["total"] == -0.75


def test_health_is_503_when_the_engine_thread_dies_or_its_loop_hangs(client: FlaskClient) -> None:
    import threading
    import time

    engine: Engine = client.application.extensions["engine"]
    done = threading.Thread(target=lambda: None)
    done.start()
    done.join()
    engine._thread = done  # an engine thread that has ended
    body = client.get("/health")
    assert body.status_code == 503 and body.get_json()["reason"] == "engine thread is dead"

    alive = threading.Event()
    running = threading.Thread(target=alive.wait, daemon=True)
    running.start()
    engine._thread = running
    engine.last_pass_at = time.monotonic()
    assert client.get("/health").status_code == 200
    engine.last_pass_at = time.monotonic() - 10_000  # no pass for far longer than ENGINE_STUCK_S
    body = client.get("/health")
    assert body.status_code == 503 and body.get_json()["reason"].startswith("engine loop stuck")
    alive.set()
    engine._thread = None


def test_a_crash_in_start_up_pauses_the_engine_instead_of_killing_its_thread(client: FlaskClient) -> None:
    import time

    engine: Engine = client.application.extensions["engine"]

    def broken() -> None:
        raise KeyError("bug")

    engine.prepare = broken  # type: ignore[method-assign]
    engine.start()
    try:
        deadline = time.monotonic() + 5
        while engine.status.state != "paused" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.status.state == "paused" and "KeyError" in engine.status.reason
        assert engine.loop_problem(120) == "" and client.get("/health").status_code == 200
    finally:
        engine.stop()


def test_an_invalid_algo_names_each_field_from_the_problems_themselves(client: FlaskClient) -> None:
    body = {"kind": "iceberg", "symbol": "BTC-PERP", "side": "buy", "quantity": -1, "visible_quantity": 2}
    response = client.post("/api/algos", json=body, headers=AUTH)
    assert response.status_code == 400
    fields = [d["field"] for d in response.get_json()["details"]]
    assert fields == ["quantity", "visible_quantity", "limit_price"]
    wrong = client.post("/api/algos", json={**body, "side": "sideways"}, headers=AUTH)
    assert wrong.status_code == 400 and wrong.get_json()["details"][0]["field"] == "body"
