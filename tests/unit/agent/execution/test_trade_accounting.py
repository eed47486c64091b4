"""Trades book everything that moved the account (price PnL, fees, funding, forfeited margin), one trade per
position: the sum of trade PnL is the change of equity, on both record stores."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.analytics.performance import TradeRecord, compute_metrics
from agent.execution.booking import book_fill, trade_pnl
from agent.execution.funding import attribute_funding, book_simulated_funding
from agent.execution.orders import OrderExecutor, PlannedOrder
from agent.journal.events import Journal
from agent.journal.store import DatabaseStore, MemoryStore, Store
from shared.db import Database, OrderRow, PositionPlanRow, TradeRow
from shared.exchange.paper import PaperConfig, PaperExchange
from shared.marketdata.funding import FundingRate
from shared.models import Fill, OrderStatus, Side
from shared.serialize import trade_dict

SYMBOL = "BTC-PERP"
T0 = datetime(2022, 1, 1, tzinfo=UTC)
KINDS = ("database", "memory")


def make_store(kind: str) -> tuple[Database, Store]:
    db = Database("sqlite://")
    db.migrate()
    return db, DatabaseStore(db) if kind == "database" else MemoryStore(db)


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    db, made = make_store(request.param)
    yield made
    db.dispose()


def order(client_id: str, role: str = "entry", exit_kind: str = "") -> OrderRow:
    return OrderRow(client_id=client_id, symbol=SYMBOL, side="BUY", order_type="MARKET", quantity=1.0,
                    role=role, exit_kind=exit_kind, status=OrderStatus.FILLED.value)  # fmt: skip


def fill(
    n: int, side: Side, quantity: float, price: float, fee: float, minutes: int, forfeited: float = 0.0
) -> Fill:
    return Fill(f"t{n}", f"c{n}", SYMBOL, side, quantity, price, fee, T0 + timedelta(minutes=minutes),
                forfeited=forfeited)  # fmt: skip


def plan(risk_per_unit: float) -> PositionPlanRow:
    return PositionPlanRow(
        symbol=SYMBOL, side="BUY", entry_client_id="c1", signal_source="tradingview", analyst="rules",
        regime="trending_up",
        entry_price=100.0, initial_quantity=1.0, initial_stop=100.0 - risk_per_unit, risk_per_unit=risk_per_unit,
        stop_price=100.0 - risk_per_unit, best_price=100.0, opened_at=T0,
    )  # fmt: skip


def test_a_partial_take_profit_funding_and_a_liquidation_make_one_trade(store: Store) -> None:
    """Long 1 at 100 (fee 0.10), half taken at 110 (price PnL +5, fee 0.055), funding -0.30 while open, the
    rest liquidated at 90 (price PnL -5, 2.00 of margin forfeited):
    pnl = 5 - 5 - (0.10 + 0.055) - 0.30 - 2.00 = -2.455; risk 10 a unit x 1 = 10, so R = -0.2455."""
    with store.transaction() as records:
        records.add_plan(plan(10.0))
        _, trade, _ = book_fill(records, fill(1, Side.BUY, 1.0, 100.0, 0.10, 0), order("c1"))
        assert trade is None
        _, trade, _ = book_fill(
            records, fill(2, Side.SELL, 0.5, 110.0, 0.055, 30), order("c2", "partial_take_profit")
        )
        assert trade is None  # a leg of the position's trade, not a trade
        assert attribute_funding(records, SYMBOL, -0.30, T0 + timedelta(minutes=60)) == "position"
        position, trade, dropped = book_fill(
            records, fill(3, Side.SELL, 0.5, 90.0, 0.0, 90, forfeited=2.0), order("c3", "exit", "liquidation")
        )
    assert trade is not None and dropped and position.quantity == 0 and position.legs == []
    assert trade.pnl == pytest.approx(-2.455)
    assert trade.fees == pytest.approx(0.155) and trade.funding == pytest.approx(-0.30)
    assert trade.forfeited == pytest.approx(2.0)
    assert trade.quantity == pytest.approx(1.0) and trade.entry_price == pytest.approx(100.0)
    assert trade.exit_price == pytest.approx(100.0)  # (0.5 x 110 + 0.5 x 90) / 1
    assert trade.exit_reason == "liquidation" and trade.initial_risk == pytest.approx(10.0)
    assert trade.r_multiple == pytest.approx(-0.2455)
    assert [leg["kind"] for leg in trade.legs] == ["entry", "partial_take_profit", "liquidation"]
    assert [leg["pnl"] for leg in trade.legs] == pytest.approx([0.0, 5.0, -5.0])
    assert trade.opened_at == T0 and trade.closed_at == T0 + timedelta(minutes=90)
    # the API and the dashboard show all of it: what moved the account and every fill of the position
    shown = json.loads(json.dumps(trade_dict(trade)))
    assert (shown["pnl"], shown["fees"], shown["funding"], shown["forfeited"]) == pytest.approx(
        (-2.455, 0.155, -0.30, 2.0)
    )
    assert [leg["kind"] for leg in shown["legs"]] == ["entry", "partial_take_profit", "liquidation"]
    assert shown["r_multiple"] == pytest.approx(-0.2455) and shown["signal_source"] == "tradingview"


def test_a_flip_closes_the_trade_with_its_share_of_the_fee_and_opens_the_next(store: Store) -> None:
    """Long 1 at 100 (fee 0.1), then sell 3 at 104 (fee 0.3): 1 closes the long (fee share 0.1, price PnL
    +4 → pnl 4 - 0.1 - 0.1 = 3.8), 2 open a short at 104 carrying the other 0.2 of the fee."""
    with store.transaction() as records:
        book_fill(records, fill(1, Side.BUY, 1.0, 100.0, 0.1, 0), order("c1"))
        position, trade, _ = book_fill(records, fill(2, Side.SELL, 3.0, 104.0, 0.3, 5), order("c2"))
    assert trade is not None and trade.pnl == pytest.approx(3.8) and trade.exit_reason == "flip"
    assert position.quantity == pytest.approx(-2.0) and position.entry_price == pytest.approx(104.0)
    (opening,) = position.legs
    assert opening["kind"] == "entry" and opening["quantity"] == pytest.approx(2.0)
    assert opening["fee"] == pytest.approx(0.2)
    assert trade_pnl(position.legs, position.funding) == (pytest.approx(-0.2), pytest.approx(0.2), 0.0)


def test_funding_reported_after_the_position_closed_goes_to_the_trade_it_was_open_in(store: Store) -> None:
    """Long 1 at 100 → 101 (fees 0): pnl 1. A payment of -0.25 settled at minute 30 (while it was open)
    arrives after it closed at minute 60: the trade's pnl becomes 0.75 and its R 0.75 / 2 = 0.375."""
    with store.transaction() as records:
        records.add_plan(plan(2.0))
        book_fill(records, fill(1, Side.BUY, 1.0, 100.0, 0.0, 0), order("c1"))
        book_fill(records, fill(2, Side.SELL, 1.0, 101.0, 0.0, 60), order("c2", "close"))
    with store.transaction() as records:
        assert attribute_funding(records, SYMBOL, -0.25, T0 + timedelta(minutes=30)) == "trade"
        assert attribute_funding(records, SYMBOL, -9.0, T0 + timedelta(minutes=61)) == ""  # after it closed
        assert attribute_funding(records, SYMBOL, -9.0, T0) == ""  # at its opening: not held at settlement
    with store.transaction() as records:
        stored = records.trade_at(SYMBOL, T0 + timedelta(minutes=30))
    assert stored is not None and stored.pnl == pytest.approx(0.75) and stored.funding == pytest.approx(-0.25)
    assert stored.r_multiple == pytest.approx(0.375)


# --- the property: sum of trade PnL == change of equity, over random orders, funding and liquidations ----

step = st.one_of(
    st.tuples(st.just("order"), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 40)),  # 0.001 lots
    st.tuples(st.just("price"), st.floats(-0.08, 0.08), st.floats(0.0, 0.06)),  # move, candle range
    st.tuples(st.just("funding"), st.floats(-0.002, 0.002), st.just(0)),
)


def _closed(store: Store, db: Database) -> list[TradeRow]:
    if isinstance(store, MemoryStore):
        store.persist()
    with db.session() as session:
        return list(session.query(TradeRow).order_by(TradeRow.id))


def _run(kind: str, steps: list[tuple[Any, ...]], leverage: float) -> tuple[list[float], int, int]:
    """Drive the paper exchange and our books through ``steps``; after each, (closed trade PnL + the open
    position's PnL so far) - (equity - starting equity). Returns those gaps, liquidations, positions."""
    db, store = make_store(kind)
    config = PaperConfig(
        starting_balance=10_000.0, taker_fee=0.0006, slippage_bps=3.0, maintenance_ratio=0.03
    )
    exchange = PaperExchange(None, config)
    executor = OrderExecutor(store, exchange, Journal(None))
    now, price = T0, 40_000.0
    exchange.on_price(SYMBOL, price, now)
    exchange.set_leverage(SYMBOL, leverage)
    gaps: list[float] = []
    liquidations = positions = 0
    for number, (what, a, b) in enumerate(steps):
        if what == "order":
            row = executor.pending_row(PlannedOrder(SYMBOL, a, b / 1000, False, leverage, "test"), None, None)
            with store.transaction() as records:
                records.add_order(row)
            with store.transaction() as records:
                before = records.position(SYMBOL)
                was = before.quantity if before is not None else 0.0
            executor.submit(row.client_id, leverage)
            with store.transaction() as records:
                after = records.position(SYMBOL)
                if after is not None and after.quantity != 0 and (was == 0 or was * after.quantity < 0):
                    positions += 1
        elif what == "funding":
            exchange.set_funding_rate(FundingRate(SYMBOL, a, now))
        else:
            now += timedelta(minutes=20 + 7 * (number % 5))  # crosses hourly settlements now and then
            close = price * (1 + a)
            exchange.on_price(SYMBOL, close, now, max(price, close) * (1 + b), min(price, close) * (1 - b))
            price = close
        # what the engine does after each candle: funding first, then the liquidations
        book_simulated_funding(store, exchange, Journal(None))
        for result in exchange.drain_liquidations():
            liquidations += 1
            with store.transaction() as records:
                records.add_order(
                    OrderRow(client_id=result.client_id, symbol=SYMBOL, side=result.side.value if result.side else "?",
                             order_type="MARKET", quantity=result.quantity, reduce_only=True, role="exit",
                             exit_kind="liquidation", status=OrderStatus.PENDING_SUBMIT.value)
                )  # fmt: skip
            executor.apply_result(result)
        with store.transaction() as records:
            row_ = records.position(SYMBOL)
            closed = sum(pnl for _, pnl in records.trade_pnls())
            running = 0.0
            if row_ is not None and row_.quantity != 0:
                running = trade_pnl(row_.legs, row_.funding)[0] + (price - row_.entry_price) * row_.quantity
        gaps.append(closed + running - (exchange.account().equity - config.starting_balance))
    # flat at the end: then the trades alone are the change of equity
    held = exchange.positions()
    if held:
        side = Side.SELL if held[0].quantity > 0 else Side.BUY
        row = executor.pending_row(
            PlannedOrder(SYMBOL, side, round(abs(held[0].quantity), 6), True, leverage, "end"), None, None
        )
        with store.transaction() as records:
            records.add_order(row)
        executor.submit(row.client_id, leverage)
    trades = _closed(store, db)
    gaps.append(sum(t.pnl for t in trades) - (exchange.account().equity - config.starting_balance))
    assert exchange.positions() == []
    # one trade per position (each opened once, closed once: a flip closes one and opens the next)
    assert len(trades) == positions
    for trade in trades:  # each trade's pnl is its legs' and its funding
        assert trade.pnl == pytest.approx(trade_pnl(trade.legs, trade.funding)[0], abs=1e-9)
    db.dispose()
    return gaps, liquidations, positions


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=40), leverage=st.sampled_from([2.0, 10.0, 20.0]))
@pytest.mark.parametrize("kind", KINDS)
def test_the_sum_of_trade_pnl_is_the_change_of_equity(
    kind: str, steps: list[tuple[Any, ...]], leverage: float
) -> None:
    gaps, _, _ = _run(kind, steps, leverage)
    assert all(math.isclose(gap, 0.0, abs_tol=1e-6) for gap in gaps), gaps


def test_the_property_reaches_liquidations_funding_and_flips() -> None:
    """A fixed sequence through every case the property covers, so that it is known to reach them: a 20x
    long, funding settled on it, a fall through its liquidation, then a flip from a short to a long."""
    steps: list[tuple[Any, ...]] = [
        ("funding", 0.001, 0), ("order", Side.BUY, 30), ("price", 0.0, 0.0), ("price", 0.001, 0.0),
        ("price", -0.06, 0.01), ("order", Side.SELL, 10), ("price", 0.01, 0.0), ("order", Side.BUY, 25),
        ("price", 0.0, 0.0), ("price", 0.0, 0.0),
    ]  # fmt: skip
    for kind in KINDS:
        gaps, liquidations, positions = _run(kind, steps, 20.0)
        assert liquidations == 1 and positions == 3
        assert all(math.isclose(gap, 0.0, abs_tol=1e-6) for gap in gaps), gaps


def test_statistics_count_positions_and_r_both_ways() -> None:
    """Two positions: +30 on a risk of 10 (R 3) and -20 on a risk of 40 (R -0.5). Mean R (3 - 0.5) / 2 = 1.25;
    total R (30 - 20) / (10 + 40) = 0.2; win rate 1 / 2."""
    trades = [
        TradeRecord(SYMBOL, "BUY", 1.0, 100.0, 130.0, 30.0, 0.0, T0, T0 + timedelta(hours=1), "take_profit",
                    r_multiple=3.0, initial_risk=10.0),
        TradeRecord(SYMBOL, "BUY", 4.0, 100.0, 95.0, -20.0, 0.0, T0 + timedelta(hours=2), T0 + timedelta(hours=3),
                    "stop_loss", r_multiple=-0.5, initial_risk=40.0),
    ]  # fmt: skip
    import pandas as pd

    equity = pd.Series([1000.0, 1030.0, 1010.0], index=pd.date_range(T0, periods=3, freq="2h"))
    m = compute_metrics(equity, trades, starting_equity=1000.0)
    assert m.trade_count == 2 and m.win_rate == pytest.approx(0.5)
    assert m.expectancy_r == pytest.approx(1.25) and m.r_total == pytest.approx(0.2)
