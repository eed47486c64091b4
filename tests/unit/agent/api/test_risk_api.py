"""/api/risk, the kill switch, manual trading states and /api/performance through the agent API."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from agent.engine.engine import Engine
from shared.db import DecisionRow, OrderRow, PositionRow
from shared.exchange.markets import load_market_specs
from tests.unit.agent.api.test_app import AUTH, add_signal


def engine_of(client: FlaskClient) -> Engine:
    return client.application.extensions["engine"]  # type: ignore[no-any-return]


def test_risk_reports_state_limits_and_position_metrics(client: FlaskClient) -> None:
    assert client.get("/api/risk").status_code == 401
    engine = engine_of(client)
    add_signal(client, "a", "buy")
    engine.process_pending_signals()
    for _ in range(5):
        engine.step_market()
    body = client.get("/api/risk", headers=AUTH).get_json()
    assert body["state"]["state"] == "ACTIVE"
    assert body["limits"]["max_position_size"] == 0.1 and body["limits"]["tolerance"] == "moderate"
    (position,) = body["metrics"]["positions"]
    assert position["symbol"] == "BTC-PERP" and position["quantity"] > 0
    mark = position["mark"]
    # isolated margin at 3x, BTC-PERP's MMR from its market spec (1.75 %):
    # liquidation = entry x (1 - 1/3) / (1 - MMR)
    mmr = load_market_specs().get("BTC-PERP").maintenance_margin_ratio
    assert mmr == 0.0175
    assert position["liquidation_price"] == pytest.approx(
        position["entry_price"] * (2 / 3) / (1 - mmr), rel=1e-6
    )
    assert position["liquidation_distance_pct"] == pytest.approx(
        (mark - position["liquidation_price"]) / mark, rel=1e-4
    )
    assert position["liquidation_distance_atr"] > 10
    assert body["metrics"]["exposure"]["gross"] == pytest.approx(position["quantity"] * mark, rel=1e-6)
    assert set(body["metrics"]["drawdown"]) == {"current", "max_to_date", "projected_24h_95"}
    assert "var_es_usd" in body["metrics"]


def test_the_kill_switch_cancels_closes_halts_and_blocks_entries(client: FlaskClient) -> None:
    engine = engine_of(client)
    add_signal(client, "a", "buy")
    engine.process_pending_signals()
    with engine.db.session() as session:
        assert session.scalars(select(OrderRow).where(OrderRow.status == "OPEN")).all()  # the stop and target
    assert client.post("/api/control/kill", json={"close_positions": "yes"}, headers=AUTH).status_code == 400
    result = client.post(
        "/api/control/kill", json={"close_positions": True, "reason": "test"}, headers=AUTH
    ).get_json()
    assert result["state"] == "HALTED" and result["complete"] is True
    assert result["closed_positions"] == ["BTC-PERP"] and result["positions_not_closed"] == []
    assert len(result["cancelled_orders"]) == 2 and result["failed_cancels"] == []
    with engine.db.session() as session:
        position = session.get(PositionRow, "BTC-PERP")
        working = session.scalars(select(OrderRow).where(OrderRow.status == "OPEN")).all()
        exit_order = session.scalar(select(OrderRow).where(OrderRow.exit_kind == "kill_switch"))
    assert position is not None and position.quantity == 0 and working == []
    assert exit_order is not None and exit_order.status == "FILLED"
    assert engine.exchange.open_orders() == []
    add_signal(client, "b", "buy")
    engine.process_pending_signals()
    with engine.db.session() as session:
        vetoed = session.scalar(select(DecisionRow).where(DecisionRow.signal_id == 2))
    assert vetoed is not None and not vetoed.risk_approved and "trading HALTED" in vetoed.risk_reason
    status = client.get("/api/status", headers=AUTH).get_json()
    assert status["engine"]["trading_state"]["state"] == "HALTED"
    # a reset makes it ACTIVE again
    assert client.post("/api/control/state", json={"state": "OPEN"}, headers=AUTH).status_code == 400
    reset = client.post("/api/control/state", json={"state": "ACTIVE"}, headers=AUTH).get_json()
    assert reset["state"] == "ACTIVE"


def test_a_kill_without_closing_keeps_the_protective_orders(client: FlaskClient) -> None:
    engine = engine_of(client)
    add_signal(client, "a", "buy")
    engine.process_pending_signals()
    result = client.post("/api/control/kill", json={}, headers=AUTH).get_json()
    assert result["closed_positions"] == [] and result["cancelled_orders"] == [] and result["complete"]
    with engine.db.session() as session:
        protective = session.scalars(select(OrderRow).where(OrderRow.status == "OPEN")).all()
    assert {o.role for o in protective} == {"stop_loss", "partial_take_profit"}


def test_reducing_blocks_new_algos(client: FlaskClient) -> None:
    client.post("/api/control/state", json={"state": "REDUCING", "reason": "calm down"}, headers=AUTH)
    response = client.post(
        "/api/algos", json={"kind": "twap", "symbol": "BTC-PERP", "side": "BUY", "quantity": 0.01, "slices": 2},
        headers=AUTH,
    )  # fmt: skip
    assert response.status_code == 400 and "REDUCING" in response.get_json()["details"][0]["message"]


def test_performance_of_the_journal(client: FlaskClient) -> None:
    engine = engine_of(client)
    add_signal(client, "a", "buy")
    engine.process_pending_signals()
    for _ in range(10):
        engine.step_market()
    add_signal(client, "b", "close")
    engine.process_pending_signals()
    body = client.get("/api/performance", headers=AUTH).get_json()
    overall = body["overall"]
    assert overall["trade_count"] == 1 and overall["fees_paid"] > 0
    assert set(body["by_signal_source"]) == {"tradingview"} and set(body["by_analyst"]) == {"rules"}
    assert body["by_exit_reason"]["close_signal"]["trade_count"] == 1
    assert overall["total_return"] == pytest.approx(body["by_symbol"]["BTC-PERP"]["pnl"] / 10_000)
