"""TWAP and iceberg on the paper exchange, on the market clock, through restarts and cancels."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from agent.engine import control
from agent.engine.engine import Engine
from agent.execution.algos import AlgoRequest, AlgoRunner
from agent.execution.orders import OrderExecutor
from agent.journal.events import Journal
from agent.journal.store import DatabaseStore
from agent.risk.slices import Slice, SliceVerdict
from shared.db import Database, OrderRow
from shared.exchange.paper import PaperConfig, PaperExchange
from shared.marketdata.orderbook import OrderBook
from shared.models import OrderRequest, OrderResult, Side
from tests.unit.agent.api.test_app import AUTH

T0 = datetime(2022, 1, 3, 12, 0, tzinfo=UTC)


def setup(database: Database, book: bool = True) -> tuple[PaperExchange, OrderExecutor, AlgoRunner]:
    paper = PaperExchange(database, PaperConfig(slippage_bps=0.0))
    paper.on_price("BTC-PERP", 40_000.0, T0)
    if book:
        paper.on_book(OrderBook("BTC-PERP", T0, ((39_990.0, 5.0),), ((40_010.0, 5.0),)))
    executor = OrderExecutor(DatabaseStore(database), paper, Journal(None))
    return paper, executor, AlgoRunner(DatabaseStore(database), executor, paper, 3.0, approve)


def approve(piece: Slice) -> SliceVerdict:
    """The gate of the runner's own tests (its mechanics): every slice passes; the engine's gate is tested
    with the engine below and in tests/unit/agent/engine/test_control.py."""
    return SliceVerdict(True, f"{piece.role} approved", "approved")


def test_twap_slices_rest_at_the_touch_then_fall_back_to_market(database: Database) -> None:
    paper, executor, runner = setup(database)
    algo = runner.start(AlgoRequest("twap", "BTC-PERP", Side.BUY, 0.04, slices=4, duration_s=240), T0)
    view = runner.progress(algo)
    assert view is not None and view["slices_sent"] == 1 and view["filled"] == 0
    (first,) = [o for o in paper.open_orders()]
    assert first.quantity == pytest.approx(0.01)
    for minute in range(1, 5):  # nobody trades down to our bid: every slice falls back to market
        now = T0 + timedelta(minutes=minute)
        paper.on_price("BTC-PERP", 40_000.0, now)
        executor.reconcile_pending()
        runner.step(now)
    view = runner.progress(algo)
    assert view is not None and view["status"] == "DONE" and view["filled"] == pytest.approx(0.04)
    roles = [role for _, role, _ in view["orders"]]
    assert roles.count("twap_slice") == 4 and roles.count("twap_fallback") == 4
    assert paper.open_orders() == []
    assert sum(p.quantity for p in paper.positions()) == pytest.approx(0.04)


def test_twap_slice_that_fills_passively_needs_no_fallback(database: Database) -> None:
    paper, executor, runner = setup(database)
    algo = runner.start(AlgoRequest("twap", "BTC-PERP", Side.BUY, 0.02, slices=2, duration_s=120), T0)
    paper.on_price("BTC-PERP", 39_995.0, T0 + timedelta(seconds=30), low=39_980.0)  # trades through our bid
    executor.reconcile_pending()
    runner.step(T0 + timedelta(minutes=1))
    paper.on_price("BTC-PERP", 39_995.0, T0 + timedelta(seconds=90), low=39_980.0)
    executor.reconcile_pending()
    runner.step(T0 + timedelta(minutes=2))
    view = runner.progress(algo)
    assert view is not None and view["status"] == "DONE"
    assert [role for _, role, _ in view["orders"]] == ["twap_slice", "twap_slice"]


def test_iceberg_shows_one_slice_at_a_time(database: Database) -> None:
    paper, executor, runner = setup(database, book=False)
    algo = runner.start(
        AlgoRequest("iceberg", "BTC-PERP", Side.SELL, 0.03, visible_quantity=0.01, limit_price=40_100.0), T0
    )
    for step in range(1, 4):
        (visible,) = paper.open_orders()
        assert visible.quantity == pytest.approx(0.01)
        paper.on_price("BTC-PERP", 40_050.0, T0 + timedelta(minutes=step), high=40_150.0)
        executor.reconcile_pending()
        runner.step(T0 + timedelta(minutes=step))
    view = runner.progress(algo)
    assert view is not None and view["status"] == "DONE" and view["filled"] == pytest.approx(0.03)
    with database.session() as session:
        prices = {o.price for o in session.scalars(select(OrderRow))}
    assert prices == {40_100.0}


def test_cancel_stops_the_algo_and_its_open_slice(database: Database) -> None:
    paper, _, runner = setup(database)
    algo = runner.start(AlgoRequest("twap", "BTC-PERP", Side.BUY, 0.04, slices=4, duration_s=240), T0)
    runner.cancel(algo)
    view = runner.progress(algo)
    assert view is not None and view["status"] == "CANCELED" and paper.open_orders() == []
    runner.step(T0 + timedelta(minutes=5))
    assert runner.progress(algo)["slices_sent"] == 1  # type: ignore[index]


def test_a_restart_resumes_where_the_algo_stood(database: Database) -> None:
    paper, _, runner = setup(database)
    algo = runner.start(AlgoRequest("twap", "BTC-PERP", Side.BUY, 0.02, slices=2, duration_s=120), T0)
    restarted = AlgoRunner(
        DatabaseStore(database),
        OrderExecutor(DatabaseStore(database), paper, Journal(None)),
        paper,
        3.0,
        approve,
    )
    for minute in (1, 2):
        paper.on_price("BTC-PERP", 40_000.0, T0 + timedelta(minutes=minute))
        restarted.step(T0 + timedelta(minutes=minute))
    view = restarted.progress(algo)
    assert view is not None and view["status"] == "DONE" and view["filled"] == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"kind": "twap", "quantity": 0}, "quantity"), ({"kind": "iceberg", "quantity": 1, "visible_quantity": 2, "limit_price": 1}, "visible_quantity"),
     ({"kind": "iceberg", "quantity": 1, "visible_quantity": 0.5}, "limit_price"), ({"kind": "twap", "quantity": 1, "slices": 0}, "slices")],
)  # fmt: skip
def test_bad_requests_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AlgoRequest(symbol="BTC-PERP", side=Side.BUY, **kwargs)  # type: ignore[arg-type]


class SlowPaper(PaperExchange):
    """The paper exchange, taking its time over every order placed (as a real one over the network): wide
    open the moment between a slice's decision and its order."""

    def place_order(self, request: OrderRequest) -> OrderResult:
        time.sleep(0.05)
        return super().place_order(request)


def test_two_steps_at_once_never_send_a_slice_twice(database: Database) -> None:
    paper = SlowPaper(database, PaperConfig(slippage_bps=0.0))
    paper.on_price("BTC-PERP", 40_000.0, T0)
    paper.on_book(OrderBook("BTC-PERP", T0, ((39_990.0, 5.0),), ((40_010.0, 5.0),)))
    executor = OrderExecutor(DatabaseStore(database), paper, Journal(None))
    runner = AlgoRunner(DatabaseStore(database), executor, paper, 3.0, approve)
    algo = runner.start(AlgoRequest("twap", "BTC-PERP", Side.BUY, 0.04, slices=4, duration_s=240), T0)
    due = T0 + timedelta(minutes=1)
    paper.on_price("BTC-PERP", 40_000.0, due)
    together = threading.Barrier(2)

    def step() -> None:  # the engine loop and the API thread, stepping at the same moment
        together.wait()
        runner.step(due)

    threads = [threading.Thread(target=step) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    view = runner.progress(algo)
    assert view is not None and view["slices_sent"] == 2
    roles = [role for _, role, _ in view["orders"]]
    assert roles == ["twap_slice", "twap_fallback", "twap_slice"]  # slice 1, its fallback, slice 2: once each
    assert sum(p.quantity for p in paper.positions()) == pytest.approx(0.01)  # only slice 1's fallback filled
    (resting,) = paper.open_orders()
    assert resting.quantity == pytest.approx(0.01)


def test_a_slice_vetoed_by_max_position_size_is_not_sent_and_shown(client: FlaskClient) -> None:
    """Two algos, each within MAX_POSITION_SIZE (10 % of equity, 0.0213 BTC here) when it starts: the
    slice that would take their position beyond it is not sent, and its algo's progress says why."""
    engine: Engine = client.application.extensions["engine"]
    first, second = (
        control.start_algo(engine, AlgoRequest("twap", "BTC-PERP", Side.BUY, 0.012, slices=2, duration_s=0))
        for _ in range(2)
    )
    engine.maintain_orders()  # the first's second slice (0.018 held), then the second's (0.024): vetoed
    done = client.get(f"/api/algos/{first}", headers=AUTH).get_json()
    assert done["status"] == "DONE" and done["filled"] == pytest.approx(0.012)
    view = client.get(f"/api/algos/{second}", headers=AUTH).get_json()
    assert view["status"] == "VETOED" and view["slices_sent"] == 1 and view["filled"] == pytest.approx(0.006)
    assert view["reason"].startswith("twap slice of 0.006 vetoed by risk (max_position_size)")
    assert "MAX_POSITION_SIZE" in view["reason"]
    assert [role for _, role, _ in view["orders"]] == ["twap_slice"]  # the vetoed slice was never recorded
    assert sum(p.quantity for p in engine.exchange.positions()) == pytest.approx(0.018)
