"""Position management on the real BTC month through the paper exchange: partial take-profit, break-even,
trailing stop, and every other exit, at the candles a hand calculation says."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from agent.analysis.follow import FollowAnalyst
from agent.engine.engine import Engine
from agent.engine.positions import PositionManager
from agent.journal.store import DatabaseStore
from agent.risk.presets import PRESETS, RiskPolicy
from shared.db import Database, OrderRow, PositionPlanRow, PositionRow, SignalRow, TradeRow
from shared.marketdata.feeds import load_candle_csv
from shared.marketdata.funding import FundingRate
from shared.models import Side
from tests.conftest import REAL_CANDLES
from tests.unit.agent.engine.test_engine import RecordingPublisher, add_signal, make_engine

REAL = load_candle_csv(REAL_CANDLES)
# only the rules under test: no level, review, time or funding exits
QUIET = replace(
    PRESETS["moderate"],
    level_break_exit=False,
    review_exits=False,
    stagnant_exit_hours=0,
    funding_exit_daily=0,
)


def prepared_engine(path: Any, policy: RiskPolicy) -> tuple[Database, Engine]:
    """A fresh database and an engine on the real month, warmed up and reconciled."""
    db = Database(f"sqlite:///{path}")
    db.migrate()
    engine = make_engine(db, RecordingPublisher(), policy=policy)
    engine.prepare()
    return db, engine


def enter_long(engine: Engine, db: Database, stop_fraction: float) -> float:
    entry = float(REAL["close"].iloc[299])  # the engine fills at the last close before the replay starts
    with db.session() as session:
        session.add(
            SignalRow(
                idempotency_key="scenario", source="tradingview", symbol="BTC-PERP", action="buy", raw={},
                stop_loss=entry * (1 - stop_fraction),
            )
        )  # fmt: skip
    engine.process_pending_signals()
    return entry


def close_time(index: int) -> pd.Timestamp:
    return pd.Timestamp(REAL["timestamp"].iloc[index]) + pd.Timedelta(minutes=1)


def hand_calculation(entry: float, risk: float, trail_pct: float) -> list[tuple[int, str, float]]:
    """The rules of agent/engine/positions.py by hand, candle by candle from index 300. Within a candle the stop
    resting on the exchange fills first (the paper exchange works resting orders in the order they were
    placed), then the partial limit; at the candle's end the manager moves the stop."""
    stop, kind, best, partial, active, events = entry - risk, "stop_loss", entry, False, False, []
    for index in range(300, len(REAL)):
        high, low, close = (float(REAL[c].iloc[index]) for c in ("high", "low", "close"))
        if low <= stop:
            return [*events, (index, kind, stop)]
        just_filled = not partial and high >= entry + risk
        if just_filled:
            partial = True
            events.append((index, "partial_take_profit", entry + risk))
        best = max(best, high)
        if just_filled and kind == "stop_loss":
            stop, kind = entry, "break_even"
            events.append((index, "move:break_even", stop))
        active = active or best - entry >= risk
        candidate = best * (1 - trail_pct / 100)
        if active and candidate - stop >= best * trail_pct / 100 / 4:  # a quarter of the distance
            stop, kind = candidate, "trailing_stop"
            events.append((index, "move:trailing_stop", stop))
        if close <= stop:
            return [*events, (index, f"market:{kind}", close)]
    raise AssertionError("the scenario never ended")


def test_partial_take_profit_break_even_and_trailing_stop_at_the_hand_calculated_candles(
    tmp_path: Any,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'scenario.db'}")
    db.migrate()
    policy = replace(QUIET, partial_take_profits="1:0.5", trailing_stop="pct:0.5", trailing_activation_r=1.0)
    engine = make_engine(db, RecordingPublisher(), policy=policy)
    engine.prepare()
    entry = enter_long(engine, db, 0.005)
    risk = entry * 0.005
    expected = hand_calculation(entry, risk, 0.5)
    kinds = [kind for _, kind, _ in expected]
    assert kinds[:2] == ["partial_take_profit", "move:break_even"] and "move:trailing_stop" in kinds
    last_index, last_kind, exit_price = expected[-1]
    assert last_kind == "trailing_stop"  # the trailing stop resting on the exchange closes the rest

    for _ in range(300, last_index + 1):
        engine.step_market()

    with db.session() as session:
        trades = session.scalars(select(TradeRow).order_by(TradeRow.id)).all()
        stops = session.scalars(
            select(OrderRow).where(OrderRow.role == "stop_loss").order_by(OrderRow.id)
        ).all()
        position = session.get(PositionRow, "BTC-PERP")
        plan = session.get(PositionPlanRow, "BTC-PERP")
    partial_index, _, partial_price = expected[0]
    # one trade for the position (0.021 opened; the partial take-profit is a leg of it, not a trade)
    (trade,) = trades
    entry_leg, first, rest = trade.legs
    assert entry_leg["kind"] == "entry" and entry_leg["quantity"] == pytest.approx(0.021)
    assert first["kind"] == "partial_take_profit" and first["quantity"] == pytest.approx(0.010)
    assert first["price"] == pytest.approx(partial_price)
    assert first["time"] == close_time(partial_index).isoformat()
    assert rest["kind"] == "trailing_stop" and rest["quantity"] == pytest.approx(0.011)
    assert rest["price"] == pytest.approx(exit_price)
    assert trade.exit_reason == "trailing_stop" and trade.quantity == pytest.approx(0.021)
    # the exit price is the legs' average: (0.010 x partial + 0.011 x trailing exit) / 0.021
    assert trade.exit_price == pytest.approx((0.010 * partial_price + 0.011 * exit_price) / 0.021)
    assert trade.closed_at == close_time(last_index)
    assert trade.pnl == pytest.approx(first["pnl"] + rest["pnl"] - sum(leg["fee"] for leg in trade.legs))
    assert trade.r_multiple == pytest.approx(trade.pnl / (0.021 * risk))
    assert trade.signal_source == "tradingview" and trade.analyst == "rules"
    # after each candle that moved the stop, the stop where the hand calculation left it was placed (one
    # order per candle: break-even and the first trailing move can happen in the same candle)
    at_candle_end: dict[int, tuple[float, str]] = {}
    for index, kind, level in expected:
        if kind.startswith("move:"):
            at_candle_end[index] = (level, kind.removeprefix("move:"))
    placed = [(s.trigger_price, s.exit_kind, s.quantity) for s in stops[1:]]  # the first is the entry's stop
    assert [(level, kind) for level, kind, _ in placed] == [
        (pytest.approx(level), kind) for level, kind in at_candle_end.values()
    ]
    assert all(quantity == 0.011 for *_, quantity in placed)  # the rest after the partial, no float dust
    assert all(s.status in ("CANCELED", "FILLED") for s in stops)
    assert stops[-1].status == "FILLED"
    assert position is not None and position.quantity == 0 and plan is None
    assert engine.exchange.open_orders() == []


def run_until_trade(engine: Engine, db: Database, limit: int) -> tuple[int, TradeRow]:
    for step in range(limit):
        engine.step_market()
        with db.session() as session:
            trade = session.scalar(select(TradeRow))
        if trade is not None:
            return step, trade
    raise AssertionError(f"no trade within {limit} candles")


def test_a_stagnant_position_is_closed_after_the_time_limit(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path / 'time.db'}")
    db.migrate()
    policy = replace(
        QUIET, stagnant_exit_hours=1, stagnant_max_r=1.0, partial_take_profits="off", trailing_stop="off"
    )
    engine = make_engine(db, RecordingPublisher(), policy=policy)
    engine.prepare()
    entry = enter_long(engine, db, 0.03)  # a 3 % stop: the market barely moves that far in an hour
    risk = entry * 0.03
    # by hand: the first candle at least an hour after the entry while the close is within 1 R
    opened = close_time(299)
    expected = next(
        i for i in range(300, len(REAL))
        if close_time(i) - opened >= timedelta(hours=1) and abs(REAL["close"].iloc[i] - entry) < risk
    )  # fmt: skip
    step, trade = run_until_trade(engine, db, 200)
    assert 300 + step == expected
    assert trade.exit_reason == "time_exit" and "stagnant" in (trade.exit_detail or "")
    assert trade.exit_price == pytest.approx(float(REAL["close"].iloc[expected]))  # no slippage configured


def test_expensive_funding_closes_the_position(tmp_path: Any) -> None:
    db, engine = prepared_engine(tmp_path / "funding.db", replace(QUIET, funding_exit_daily=0.001))
    enter_long(engine, db, 0.01)
    market = engine.markets["BTC-PERP"]
    feed_time = close_time(299).to_pydatetime()
    engine.feeds["BTC-PERP"].derivatives = lambda: (None, FundingRate("BTC-PERP", 0.0001, feed_time))  # type: ignore[method-assign]
    engine.step_market()  # learns the rate: 0.01 % an hour = 0.24 % a day for a long
    assert market.funding is not None
    _, trade = run_until_trade(engine, db, 2)
    assert trade.exit_reason == "funding" and "0.240%" in (trade.exit_detail or "")


def test_closing_through_the_level_the_entry_depended_on_exits(tmp_path: Any) -> None:
    db, engine = prepared_engine(tmp_path / "level.db", replace(QUIET, level_break_exit=True))
    entry = enter_long(engine, db, 0.03)
    level = entry * 0.999  # a support just below the entry, set by hand
    with db.session() as session:
        plan = session.get(PositionPlanRow, "BTC-PERP")
        assert plan is not None
        plan.level_price, plan.level_kind = level, "support"
    engine.executor._touched("BTC-PERP")  # the manager re-reads its books
    # by hand: the first 15m candle (closing at a quarter hour) whose close is below the level
    closes_15m = REAL.set_index("timestamp")["close"].iloc[:5000].resample("15min").last()
    first_break = next(t for t, c in closes_15m.items() if t >= REAL["timestamp"].iloc[300] and c < level)
    expected = REAL.index[REAL["timestamp"] == first_break + pd.Timedelta(minutes=14)][0]
    step, trade = run_until_trade(engine, db, 3000)
    assert 300 + step == expected
    assert trade.exit_reason == "level_break" and "support" in (trade.exit_detail or "")


def test_the_analysts_risk_view_turning_exits_on_a_15m_close(tmp_path: Any) -> None:
    db, engine = prepared_engine(tmp_path / "review.db", replace(QUIET, review_exits=True))
    enter_long(engine, db, 0.03)
    views: list[str] = []
    real_review = engine.review

    def review(symbol: str, side: Any) -> str | None:
        why = real_review(symbol, side)
        views.append(why or "")
        return why

    engine.manager._reviewer = review  # type: ignore[attr-defined]
    step, trade = run_until_trade(engine, db, 3000)
    assert (
        trade.exit_reason == "risk_view" and "trend and momentum turned against the long" in trade.exit_detail
    )
    # it was asked once per closed 15m candle, and said nothing before the one that exited
    assert views[-1] and not any(views[:-1])
    assert (close_time(300 + step).minute % 15) == 0


def test_review_of_the_rules_analyst_names_the_values() -> None:
    from agent.analysis.rules import RulesAnalyst
    from shared.marketdata.snapshot import MarketState
    from shared.models import Side

    state = MarketState("BTC-PERP", "replay")
    analyst = RulesAnalyst()
    found = {Side.BUY: "", Side.SELL: ""}
    for row in REAL.iloc[:6000].itertuples():
        from shared.models import Candle

        state.add_candle(
            Candle(
                "BTC-PERP", row.timestamp.to_pydatetime(), row.open, row.high, row.low, row.close, row.volume
            )
        )
        for side in found:
            found[side] = found[side] or (analyst.review(side, state) or "")
    assert "against the long: EMA20=" in found[Side.BUY] and "MACD hist=" in found[Side.BUY]
    assert "against the short" in found[Side.SELL]


def test_a_new_plan_over_a_stored_one_updates_it(tmp_path: Any) -> None:
    """The books said no plan, but one is stored (written meanwhile): saving the new plan replaces it."""
    db, engine = prepared_engine(tmp_path / "plan.db", QUIET)
    enter_long(engine, db, 0.005)
    plan = engine.manager.plan("BTC-PERP")
    assert plan is not None
    moved = replace(plan, stop_price=(plan.stop_price or 0.0) - 10.0, best_price=plan.best_price + 1.0)
    engine.manager._save(moved, new=True)
    with db.session() as session:
        (row,) = session.scalars(select(PositionPlanRow)).all()
    assert row.stop_price == moved.stop_price and row.best_price == moved.best_price


UNPROTECTED = replace(QUIET, stop_atr_multiple=0, trailing_stop="off", partial_take_profits="off")


@pytest.mark.parametrize("policy", [QUIET, UNPROTECTED], ids=["stops and targets", "no protective orders"])
def test_the_books_kept_from_bookings_are_the_books_in_the_journal(tmp_path: Any, policy: RiskPolicy) -> None:
    """After each entry, flip and close the manager's books (moved by the executor's bookings, not read
    back, when only an entry or close order changed) equal a fresh read of the journal: position, entry
    price, plan, protective legs, partials."""
    db, engine = prepared_engine(tmp_path / "books.db", policy)
    engine.analyst = FollowAnalyst()
    for number, action in enumerate(("buy", "sell", "buy", "close")):
        add_signal(db, f"b{number}", action)
        engine.process_pending_signals()
        kept = engine.manager._book("BTC-PERP")
        fresh = PositionManager(DatabaseStore(db), engine.executor, policy)._book("BTC-PERP")
        assert (kept.quantity, kept.entry_price, kept.plan, kept.legs, kept.partials_filled) == (
            fresh.quantity, fresh.entry_price, fresh.plan, fresh.legs, fresh.partials_filled
        )  # fmt: skip
        assert kept.revision == fresh.revision
        if kept.plan is not None:  # made from the entry handed over: the one the journal names
            side = Side.BUY if kept.quantity > 0 else Side.SELL
            entry, decision, signal = PositionManager(DatabaseStore(db), engine.executor, policy)._entry_rows(
                "BTC-PERP", side, None
            )
            assert entry is not None and decision is not None and signal is not None
            assert (kept.plan.entry_client_id, kept.plan.decision_id, kept.plan.signal_id) == (
                entry.client_id, decision.id, signal.id
            )  # fmt: skip
            assert (kept.plan.signal_source, kept.plan.analyst) == (signal.source, decision.analyst)
    assert engine.manager._book("BTC-PERP").quantity == 0 and count_orders(db) >= 4


def count_orders(db: Database) -> int:
    with db.session() as session:
        return len(session.scalars(select(OrderRow)).all())
