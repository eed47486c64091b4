"""agent.engine.control on an engine over the paper exchange (built and reconciled, not started): algos
gated slice by slice by the trading state and the risk limits, and the kill switch's report."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from agent.engine import control
from agent.engine.engine import Engine
from agent.execution.algos import AlgoRequest
from shared.db import OrderRow, PositionRow
from shared.errors import Temporary, UnknownOutcome
from shared.exchange.base import OrderRef
from shared.models import OrderRequest, OrderResult, OrderType, Side
from tests.unit.agent.api.test_app import AUTH, add_signal


def engine_of(client: FlaskClient) -> Engine:
    return client.application.extensions["engine"]


def go_long(client: FlaskClient) -> float:
    """A signal's entry: our long position in BTC-PERP, protected by a stop and a partial target."""
    engine = engine_of(client)
    add_signal(client, "long", "buy")
    engine.process_pending_signals()
    return position(engine)


def position(engine: Engine) -> float:
    with engine.db.session() as session:
        row = session.get(PositionRow, "BTC-PERP")
        return row.quantity if row is not None else 0.0


def slices(engine: Engine, algo_id: str) -> list[OrderRow]:
    with engine.db.session() as session:
        query = select(OrderRow).where(OrderRow.parent_client_id == algo_id).order_by(OrderRow.id)
        return list(session.scalars(query))


def set_state(engine: Engine, state: str) -> None:
    engine.set_trading_state(state, "test")


def twap(side: Side, quantity: float) -> AlgoRequest:
    """Two slices due at once (duration 0): the first at start, the rest at the next step."""
    return AlgoRequest("twap", "BTC-PERP", side, quantity, slices=2, duration_s=0)


@pytest.mark.parametrize("state", ["REDUCING", "HALTED"])
def test_reducing_and_halted_stop_the_buys_of_a_running_algo_on_a_flat_position(
    client: FlaskClient, state: str
) -> None:
    engine = engine_of(client)
    algo_id = control.start_algo(engine, twap(Side.BUY, 0.02))
    (first,) = slices(engine, algo_id)
    set_state(engine, state)
    engine.maintain_orders()  # the loop's step: the second slice is vetoed, not sent
    view = engine.algos.progress(algo_id)
    assert view is not None and view["status"] == "VETOED" and view["slices_sent"] == 1
    assert view["reason"].startswith("twap slice of 0.01 vetoed by risk (trading_state)")
    assert f"trading {state}" in view["reason"]
    assert [o.client_id for o in slices(engine, algo_id)] == [first.client_id]
    assert engine.exchange.open_orders() == [] and position(engine) == pytest.approx(first.quantity)
    engine.maintain_orders()  # a stopped algo stays stopped
    assert len(slices(engine, algo_id)) == 1


def test_reducing_refuses_an_algo_that_would_grow_a_long_position(client: FlaskClient) -> None:
    engine = engine_of(client)
    held = go_long(client)
    set_state(engine, "REDUCING")
    with pytest.raises(control.AlgoVetoed, match="trading REDUCING") as vetoed:
        control.start_algo(engine, twap(Side.BUY, 0.002))
    assert vetoed.value.verdict.rule == "trading_state"
    assert engine.algos.running() == [] and position(engine) == held
    response = client.post(
        "/api/algos", json={"kind": "twap", "symbol": "BTC-PERP", "side": "BUY", "quantity": 0.002},
        headers=AUTH,
    )  # fmt: skip
    body = response.get_json()
    assert response.status_code == 400 and body["error"] == "vetoed by risk"
    assert body["details"][0]["rule"] == "trading_state" and "REDUCING" in body["details"][0]["message"]


def test_reducing_lets_the_slices_that_reduce_a_long_position_through(client: FlaskClient) -> None:
    engine = engine_of(client)
    held = go_long(client)
    set_state(engine, "REDUCING")
    algo_id = control.start_algo(engine, twap(Side.SELL, 0.01))
    engine.maintain_orders()  # the second slice
    engine.maintain_orders()  # both filled: done
    view = engine.algos.progress(algo_id)
    assert view is not None and view["status"] == "DONE" and view["filled"] == pytest.approx(0.01)
    assert position(engine) == pytest.approx(held - 0.01)
    sent = slices(engine, algo_id)
    assert sent and all(o.reduce_only and o.side == "SELL" for o in sent)


def test_halted_refuses_a_new_algo_that_grows_exposure(client: FlaskClient) -> None:
    engine = engine_of(client)
    set_state(engine, "HALTED")
    with pytest.raises(control.AlgoVetoed, match="trading HALTED"):
        control.start_algo(engine, twap(Side.SELL, 0.01))
    with engine.db.session() as session:
        assert session.scalars(select(OrderRow)).all() == []


def failing_cancel(engine: Engine, victim: str) -> list[str]:
    """The paper exchange, whose cancel of ``victim`` fails (the exchange is unreachable for it): every
    cancel asked of it is listed."""
    paper = engine.exchange
    real: Callable[[str, OrderRef | None], OrderResult] = paper.cancel_order
    asked: list[str] = []

    def cancel_order(client_id: str, ref: OrderRef | None = None) -> OrderResult:
        asked.append(client_id)
        if client_id == victim:
            raise Temporary(f"exchange unreachable cancelling {client_id}")
        return real(client_id, ref)

    paper.cancel_order = cancel_order  # type: ignore[method-assign]
    return asked


def test_the_kill_switch_reports_the_cancel_that_failed(client: FlaskClient) -> None:
    engine = engine_of(client)
    held = go_long(client)
    iceberg = AlgoRequest(
        "iceberg", "BTC-PERP", Side.SELL, 0.01, visible_quantity=0.005, limit_price=99_000.0
    )
    algo_id = control.start_algo(engine, iceberg)  # a reducing slice resting far above the price
    (visible,) = slices(engine, algo_id)
    with engine.db.session() as session:
        protective = {
            o.role: o.client_id
            for o in session.scalars(
                select(OrderRow).where(OrderRow.status == "OPEN", OrderRow.role != "iceberg")
            )
        }
    assert set(protective) == {"stop_loss", "partial_take_profit"} and held > 0
    asked = failing_cancel(engine, protective["stop_loss"])
    response = client.post(
        "/api/control/kill", json={"close_positions": True, "reason": "drill"}, headers=AUTH
    )
    report = response.get_json()
    assert response.status_code == 200 and report["state"] == "HALTED" and report["reason"] == "drill"
    assert sorted(report["cancelled_orders"]) == sorted(
        [protective["partial_take_profit"], visible.client_id]
    )
    (failed,) = report["failed_cancels"]
    assert failed["client_id"] == protective["stop_loss"] and failed["symbol"] == "BTC-PERP"
    assert failed["error"] == f"Temporary: exchange unreachable cancelling {protective['stop_loss']}"
    assert asked.count(protective["stop_loss"]) == 4  # the executor's three tries and the last attempt
    assert report["cancelled_algos"] == [algo_id] and report["complete"] is False
    assert report["closed_positions"] == ["BTC-PERP"] and report["positions_not_closed"] == []
    assert position(engine) == 0
    with engine.db.session() as session:
        stop = session.scalar(select(OrderRow).where(OrderRow.client_id == protective["stop_loss"]))
    assert stop is not None and stop.status == "OPEN"  # not reported cancelled: it is not
    view = engine.algos.progress(algo_id)
    assert view is not None and view["status"] == "CANCELED" and view["reason"] == "kill switch"


def test_the_kill_switch_reports_a_position_it_could_not_close(client: FlaskClient) -> None:
    engine = engine_of(client)
    held = go_long(client)
    paper = engine.exchange
    real = paper.place_order

    def place_order(request: OrderRequest) -> OrderResult:
        if request.reduce_only and request.order_type is OrderType.MARKET:
            raise Temporary("exchange unreachable")
        return real(request)

    paper.place_order = place_order  # type: ignore[method-assign]
    report = control.kill(engine, "drill", close_positions=True)
    assert report.closed_positions == [] and not report.complete
    (left,) = report.positions_not_closed
    assert left.symbol == "BTC-PERP" and left.quantity == pytest.approx(held)
    assert "PENDING_SUBMIT" in left.error and left.error.startswith("exit order ")


def test_the_kill_switch_reports_an_order_of_unknown_outcome_it_could_not_cancel(client: FlaskClient) -> None:
    """An entry sent while the exchange did not answer stays PENDING_SUBMIT (it may be on the exchange): the
    kill switch tries to cancel it and says it could not, with the exchange's answer."""
    engine = engine_of(client)
    paper = engine.exchange
    real = paper.place_order

    def place_order(request: OrderRequest) -> OrderResult:
        raise UnknownOutcome("timed out after sending")

    paper.place_order = place_order  # type: ignore[method-assign]
    add_signal(client, "lost", "buy")
    engine.process_pending_signals()
    paper.place_order = real  # type: ignore[method-assign]
    with engine.db.session() as session:
        (pending,) = session.scalars(select(OrderRow).where(OrderRow.status == "PENDING_SUBMIT"))
    report = control.kill(engine, "drill", close_positions=False)
    assert report.cancelled_orders == [] and not report.complete
    (failed,) = report.failed_cancels
    assert failed.client_id == pending.client_id and failed.error.startswith("Rejected: unknown order")
