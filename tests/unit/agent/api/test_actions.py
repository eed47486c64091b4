"""A trader's actions through the agent API on an engine over the paper exchange (built, not started):
closing all or part of a position, moving its stop, cancelling orders, and each refusal with its rule."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from agent.engine.engine import Engine
from shared.db import OrderRow, PositionRow, TradeRow
from tests.unit.agent.api.test_app import AUTH, add_signal


def engine_of(client: FlaskClient) -> Engine:
    return client.application.extensions["engine"]  # type: ignore[no-any-return]


def long_position(client: FlaskClient) -> float:
    engine = engine_of(client)
    engine.step_market()
    add_signal(client, "long", "buy")
    engine.process_pending_signals()
    held = position(engine)
    assert held > 0
    return held


def position(engine: Engine) -> float:
    with engine.db.session() as session:
        row = session.get(PositionRow, "BTC-PERP")
        return row.quantity if row is not None else 0.0


def working(engine: Engine, role: str) -> list[OrderRow]:
    with engine.db.session() as session:
        query = select(OrderRow).where(
            OrderRow.role == role, OrderRow.status.in_(("OPEN", "PENDING_SUBMIT", "PARTIALLY_FILLED"))
        )
        return list(session.scalars(query))


def post(client: FlaskClient, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    response = client.post(path, json=body or {}, headers=AUTH)
    return response.status_code, response.get_json()


def test_actions_need_the_token(client: FlaskClient) -> None:
    assert client.post("/api/positions/BTC-PERP/close", json={}).status_code == 401
    assert client.post("/api/orders/x/cancel").status_code == 401


def test_reduce_by_half_then_close_the_rest(client: FlaskClient) -> None:
    engine = engine_of(client)
    held = long_position(client)
    (stop,) = working(engine, "stop_loss")
    assert stop.quantity == pytest.approx(held)
    status, body = post(client, "/api/positions/BTC-PERP/close", {"fraction": 0.5, "request_id": "r1"})
    assert status == 200, body
    half = round(held / 2 // 0.001 * 0.001, 3)
    assert body["quantity"] == pytest.approx(half) and body["status"] == "FILLED"
    assert body["position"] == pytest.approx(held - half) == pytest.approx(position(engine))
    (new_stop,) = working(engine, "stop_loss")  # the stop follows the smaller position
    assert new_stop.quantity == pytest.approx(held - half) and new_stop.client_id != stop.client_id
    # the same request again sends nothing
    status, again = post(client, "/api/positions/BTC-PERP/close", {"fraction": 0.5, "request_id": "r1"})
    assert status == 200 and again["repeated"] is True and again["client_id"] == body["client_id"]
    assert position(engine) == pytest.approx(held - half)
    with engine.db.session() as session:
        exits = session.scalars(select(OrderRow).where(OrderRow.exit_kind == "manual")).all()
        assert len(exits) == 1 and exits[0].reduce_only

    status, body = post(client, "/api/positions/btcusdt.p/close", {})
    assert status == 200 and body["position"] == 0.0 and position(engine) == 0.0
    assert working(engine, "stop_loss") == [] and working(engine, "partial_take_profit") == []
    with engine.db.session() as session:
        reasons = [t.exit_reason for t in session.scalars(select(TradeRow))]
    assert reasons and set(reasons) == {"manual"}
    status, body = post(client, "/api/positions/BTC-PERP/close", {})
    assert status == 404 and body["details"][0]["rule"] == "not_found"


def test_bad_fractions_and_symbols_are_400s_naming_the_field(client: FlaskClient) -> None:
    engine = engine_of(client)
    held = long_position(client)
    for fraction in (0, 1.5, "half"):
        status, body = post(client, "/api/positions/BTC-PERP/close", {"fraction": fraction})
        assert status == 400 and body["details"][0]["field"] == "fraction"
    status, body = post(client, "/api/positions/DOGE-PERP/close", {"fraction": 1})
    assert status == 400 and body["details"][0]["field"] == "symbol"
    status, body = post(client, "/api/positions/BTC-PERP/close", {"fraction": 0.0001})
    assert status == 409 and body["error"] == "refused" and body["details"][0]["rule"] == "min_quantity"
    assert position(engine) == held


def test_move_the_stop_towards_the_price_and_refuse_widening_or_the_wrong_side(client: FlaskClient) -> None:
    engine = engine_of(client)
    long_position(client)
    (stop,) = working(engine, "stop_loss")
    assert stop.trigger_price is not None
    mark = engine.exchange.mark_price("BTC-PERP")
    assert mark is not None
    status, body = post(client, "/api/positions/BTC-PERP/stop", {"price": stop.trigger_price - 100})
    assert status == 409 and body["details"][0] == {
        "field": "price", "rule": "stop_widening", "message": body["details"][0]["message"]
    }  # fmt: skip
    status, body = post(client, "/api/positions/BTC-PERP/stop", {"price": mark + 50})
    assert status == 409 and body["details"][0]["rule"] == "stop_side"
    assert [o.client_id for o in working(engine, "stop_loss")] == [stop.client_id]  # nothing changed

    tighter = round((stop.trigger_price + mark) / 2, 1)
    status, body = post(client, "/api/positions/BTC-PERP/stop", {"price": tighter})
    assert status == 200, body
    assert body["stop"] == pytest.approx(tighter) and body["stops_working"] == [pytest.approx(tighter)]
    (moved,) = working(engine, "stop_loss")
    assert moved.trigger_price == pytest.approx(tighter) and moved.client_id != stop.client_id
    plan = engine.manager.plan("BTC-PERP")
    assert plan is not None and plan.stop_price == pytest.approx(tighter)
    status, body = post(client, "/api/positions/BTC-PERP/stop", {"price": "x"})
    assert status == 400 and body["details"][0]["field"] == "price"


def test_cancel_refuses_the_protective_stop_and_cancels_a_take_profit(client: FlaskClient) -> None:
    engine = engine_of(client)
    long_position(client)
    (stop,) = working(engine, "stop_loss")
    status, body = post(client, f"/api/orders/{stop.client_id}/cancel")
    assert status == 409 and body["details"][0]["rule"] == "protective_stop"
    assert "close the position instead" in body["details"][0]["message"]
    assert [o.client_id for o in working(engine, "stop_loss")] == [stop.client_id]
    targets = working(engine, "partial_take_profit")
    if targets:
        status, body = post(client, f"/api/orders/{targets[0].client_id}/cancel")
        assert status == 409 and body["details"][0]["rule"] == "managed_order"
    status, body = post(client, "/api/orders/bfa-nothing/cancel")
    assert status == 404

    # once flat, a cancelled order is not working: refused
    post(client, "/api/positions/BTC-PERP/close", {})
    status, body = post(client, f"/api/orders/{stop.client_id}/cancel")
    assert status == 409 and body["details"][0]["rule"] == "not_working"


def test_cancel_a_resting_limit_entry(client: FlaskClient) -> None:
    engine = engine_of(client)
    engine.step_market()
    mark = engine.exchange.mark_price("BTC-PERP")
    assert mark is not None
    status, body = post(
        client, "/api/algos",
        {"kind": "iceberg", "symbol": "BTC-PERP", "side": "BUY", "quantity": 0.002,
         "visible_quantity": 0.001, "limit_price": round(mark * 0.9, 1)},
    )  # fmt: skip
    assert status == 201, body
    with engine.db.session() as session:
        (slice_,) = session.scalars(select(OrderRow).where(OrderRow.status == "OPEN")).all()
    status, body = post(client, f"/api/orders/{slice_.client_id}/cancel")
    assert status == 200 and body["status"] == "CANCELED" and body["client_id"] == slice_.client_id
    assert engine.exchange.open_orders() == []
