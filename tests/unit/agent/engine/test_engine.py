"""The engine step on real candles: signal -> decision -> order -> position -> trade, exactly once."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from agent.analysis.base import MarketContext
from agent.analysis.follow import FollowAnalyst
from agent.analysis.rules import RulesAnalyst
from agent.engine import control
from agent.engine.engine import Engine
from agent.journal.events import Journal
from agent.risk.presets import PRESETS, RiskPolicy
from shared.db import Database, DecisionRow, EventRow, FillRow, OrderRow, PositionRow, SignalRow, TradeRow
from shared.exchange.paper import PaperConfig, PaperExchange
from shared.marketdata.feeds import ReplayFeed
from shared.models import Decision, Signal, SignalAction
from tests.conftest import REAL_CANDLES


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, data))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def make_engine(
    db: Database,
    publisher: RecordingPublisher,
    start_index: int = 300,
    policy: RiskPolicy = PRESETS["moderate"],
) -> Engine:
    return Engine(
        db=db,
        exchange=PaperExchange(db, PaperConfig(slippage_bps=0.0)),
        analyst=RulesAnalyst(),
        feeds=[ReplayFeed(REAL_CANDLES, "BTC-PERP", start_index=start_index)],
        journal=Journal(publisher),  # type: ignore[arg-type]
        policy=policy,
        candle_interval_s=0.0,
    )


def add_signal(db: Database, key: str, action: str) -> int:
    with db.session() as session:
        row = SignalRow(idempotency_key=key, source="tradingview", symbol="BTC-PERP", action=action, raw={})
        session.add(row)
        session.flush()
        return row.id


def count(db: Database, table: Any) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
def engine(database: Database) -> Engine:
    publisher = RecordingPublisher()
    engine = make_engine(database, publisher)
    engine.prepare()
    return engine


def test_buy_signal_becomes_a_filled_paper_order_once(engine: Engine, database: Database) -> None:
    signal_id = add_signal(database, "k1", "buy")
    assert engine.process_pending_signals() == 1
    assert engine.process_pending_signals() == 0  # decided signals are never processed again
    engine.process_signal(signal_id)  # an explicit second nudge changes nothing either
    with database.session() as session:
        (order,) = session.scalars(select(OrderRow).where(OrderRow.role == "entry")).all()
        protective = session.scalars(select(OrderRow).where(OrderRow.role != "entry")).all()
        decision = session.scalar(select(DecisionRow))
        position = session.get(PositionRow, "BTC-PERP")
    assert decision is not None and decision.action == "open_long" and decision.risk_approved
    assert "RSI14=" in decision.rationale
    assert order.signal_id == signal_id and order.status == "FILLED" and order.side == "BUY"
    assert order.price == pytest.approx(engine.history["BTC-PERP"][-1].close)
    assert order.quantity == pytest.approx(int(1_000 / order.price * 1000) / 1000)
    assert position is not None and position.quantity == pytest.approx(order.quantity)
    # every entry is protected at once: a stop STOP_ATR_MULTIPLE ATRs away, and the partial take-profit at 1R
    stop = decision.risk["stop"]
    atr = engine.markets["BTC-PERP"].indicator("15m", "atr")
    assert stop == pytest.approx(order.price - 2.0 * atr, rel=1e-3)
    assert {(o.role, o.status, o.reduce_only) for o in protective} == {
        ("stop_loss", "OPEN", True),
        ("partial_take_profit", "OPEN", True),
    }
    assert decision.risk["binding"] == "max_position_size"
    names = engine.journal._publisher.names()  # type: ignore[union-attr]
    assert {"signal", "decision", "order", "position"} <= set(names)
    assert count(database, EventRow) >= 4


def test_close_signal_records_a_trade_net_of_both_fees(engine: Engine, database: Database) -> None:
    add_signal(database, "k1", "buy")
    engine.process_pending_signals()
    for _ in range(30):
        engine.step_market()
    add_signal(database, "k2", "close")
    engine.process_pending_signals()
    with database.session() as session:
        fills = session.scalars(select(FillRow).order_by(FillRow.id)).all()
        (trade,) = session.scalars(select(TradeRow)).all()
        position = session.get(PositionRow, "BTC-PERP")
    entry, exit_ = fills
    gross = (exit_.price - entry.price) * entry.quantity
    assert trade.pnl == pytest.approx(gross - entry.fee - exit_.fee)
    assert trade.fees == pytest.approx(entry.fee + exit_.fee)
    assert position is not None and position.quantity == 0
    account = engine.exchange.account()
    assert account.balance == pytest.approx(10_000 + trade.pnl)


def test_trend_against_the_signal_is_vetoed_with_the_indicator_values(database: Database) -> None:
    engine = make_engine(database, RecordingPublisher(), start_index=600)  # a falling stretch
    engine.prepare()
    add_signal(database, "k1", "buy")
    engine.process_pending_signals()
    with database.session() as session:
        decision = session.scalar(select(DecisionRow))
    assert decision is not None and decision.action == "hold" and not decision.risk_approved
    assert "trend and momentum against" in decision.rationale and "EMA20=" in decision.rationale
    assert count(database, OrderRow) == 0


def test_crash_between_commit_and_exchange_is_resolved_without_a_second_order(database: Database) -> None:
    """The order row is committed, the process dies before the exchange is called: after restart the
    exchange does not know the order; after three look-ups it is LOST (alerted, never resent) and the
    signal is not traded twice."""
    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    signal_id = add_signal(database, "k1", "buy")
    engine.executor.submit = lambda client_id, leverage, committed=None: None  # type: ignore[method-assign]  # "crash"
    engine.process_pending_signals()
    with database.session() as session:
        assert session.scalar(select(OrderRow.status)) == "PENDING_SUBMIT"
    restarted = make_engine(database, RecordingPublisher())
    restarted.prepare()
    restarted.process_pending_signals()
    with database.session() as session:
        assert session.scalar(select(OrderRow.status)) == "PENDING_SUBMIT"  # not found once: not yet LOST
    restarted.executor.reconcile_pending()
    restarted.executor.reconcile_pending()
    with database.session() as session:
        (order,) = session.scalars(select(OrderRow).where(OrderRow.signal_id == signal_id)).all()
    assert order.status == "LOST" and "not found on the exchange 3 times" in (order.reason or "")
    assert restarted.exchange.positions() == [] and restarted.status.state == "running"
    assert restarted.exchange.get_order(order.client_id) is None  # never resent


def test_crash_after_the_exchange_filled_is_reconciled_from_the_exchange(database: Database) -> None:
    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    add_signal(database, "k1", "buy")
    engine.executor.apply_result = lambda result, committed=None: None  # type: ignore[method-assign]  # dies after the fill
    engine.process_pending_signals()
    restarted = make_engine(database, RecordingPublisher())
    restarted.prepare()
    with database.session() as session:
        order = session.scalar(select(OrderRow))
        position = session.get(PositionRow, "BTC-PERP")
    assert order is not None and order.status == "FILLED"
    assert position is not None and position.quantity == pytest.approx(order.quantity)
    assert restarted.status.state == "running"
    with database.session() as session:
        roles = sorted(session.scalars(select(OrderRow.role)))
    # the entry once, and the fill found at start-up protected at once (not at the next candle)
    assert roles.count("entry") == 1 and "stop_loss" in roles


def test_positions_that_disagree_with_the_exchange_are_external_and_block_entries(database: Database) -> None:
    with database.session() as session:
        session.add(
            PositionRow(symbol="BTC-PERP", quantity=0.5, entry_price=40_000.0, realized_pnl=0.0, fees=0.0)
        )
    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    assert engine.status.state == "running" and "ours 0.5 vs exchange 0" in engine.external["BTC-PERP"]
    add_signal(database, "k1", "buy")
    engine.process_pending_signals()
    with database.session() as session:
        decision = session.scalar(select(DecisionRow))
    assert decision is not None and "EXTERNAL" in decision.rationale and not decision.risk_approved
    assert engine.snapshot()["external"] == engine.external


def test_an_order_we_did_not_place_is_external(database: Database) -> None:
    from shared.models import OrderRequest, OrderType, Side

    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    engine.exchange.place_order(  # someone else, on the same account
        OrderRequest("manual-1", "BTC-PERP", Side.BUY, 0.01, OrderType.LIMIT, price=1_000.0, leverage=3)
    )
    restarted = make_engine(database, RecordingPublisher())
    restarted.prepare()
    with database.session() as session:
        row = session.scalar(select(OrderRow).where(OrderRow.client_id == "manual-1"))
    assert row is not None and row.status == "EXTERNAL" and row.signal_id is None
    assert "manual-1" in restarted.external["BTC-PERP"]


class UnreadableExchange(PaperExchange):
    broken = True

    def open_orders(self, symbol: str | None = None) -> list[Any]:
        if self.broken:
            from shared.errors import Temporary

            raise Temporary("exchange unreachable")
        return super().open_orders(symbol)


def test_failed_reconciliation_keeps_trading_paused_until_it_succeeds(database: Database) -> None:
    engine = make_engine(database, RecordingPublisher())
    engine.exchange = UnreadableExchange(database, PaperConfig())
    engine.executor._exchange = engine.exchange  # type: ignore[attr-defined]
    engine.prepare()
    assert engine.status.state == "paused" and "reconciliation failed" in engine.status.reason
    engine.exchange.broken = False  # type: ignore[attr-defined]
    engine.reconcile()
    assert engine.status.state == "running" and engine.status.reason == ""


def test_replay_restart_resets_the_market_state(database: Database) -> None:
    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    feed = engine.feeds["BTC-PERP"]
    feed.cursor = len(feed._ohlcv)  # type: ignore[attr-defined]  # at the end of the file
    engine.step_market()  # wraps to the first candle: time goes back
    market = engine.markets["BTC-PERP"]
    assert market.snapshot().timeframes["1m"].candles == 1 and len(engine.history["BTC-PERP"]) == 1


class StaleReplay(ReplayFeed):
    """The real replay, reporting that its data stopped (what a live feed does when the exchange goes quiet)."""

    @property
    def stale(self) -> bool:
        return True


def test_a_stale_market_blocks_entries_but_not_exits(database: Database) -> None:
    publisher = RecordingPublisher()
    engine = make_engine(database, publisher)
    engine.prepare()
    add_signal(database, "k1", "buy")
    engine.process_pending_signals()  # fresh data: trades
    engine.feeds["BTC-PERP"] = StaleReplay(REAL_CANDLES, "BTC-PERP", start_index=300)
    engine.step_market()
    add_signal(database, "k2", "sell")
    add_signal(database, "k3", "close")
    engine.process_pending_signals()
    with database.session() as session:
        decisions = {d.signal_id: d for d in session.scalars(select(DecisionRow))}
    # the stale market blocks the new short, but the sell still takes the long off (exit on reversal)
    assert "is stale" in decisions[2].rationale and decisions[2].risk_approved
    assert "against the open position" in decisions[2].risk_reason
    with database.session() as session:
        order = session.scalar(select(OrderRow).where(OrderRow.signal_id == 2))
        position = session.get(PositionRow, "BTC-PERP")
    assert order is not None and order.reduce_only and order.exit_kind == "signal_reversed"
    assert position is not None and position.quantity == 0  # flat: no short was opened
    assert decisions[3].action == "close" and decisions[3].risk_reason == "nothing to close"
    assert engine.snapshot()["stale"] == {"BTC-PERP": True}
    assert any(name == "market" and data["stale"] for name, data in publisher.events)


def test_the_engine_trades_on_a_live_bluefin_feed(database: Database) -> None:
    """The live feed through the engine: polled candles, derivatives in the snapshot, an order."""
    from shared.marketdata.bluefin import BluefinFeed, BluefinMarketData, bluefin_network
    from tests.fakes.bluefin_gateway import FakeBluefinGateway

    gateway = FakeBluefinGateway(cursor=301)
    gateway.start()
    hub = BluefinMarketData(bluefin_network(gateway.url), ("BTC-PERP",))
    try:
        hub.start(with_socket=False)
        engine = make_engine(database, RecordingPublisher())
        engine.feeds = {"BTC-PERP": BluefinFeed(hub, "BTC-PERP")}
        engine.markets["BTC-PERP"].source = "bluefin"
        engine.prepare()
        gateway.advance(2)
        engine.step_market()
        snapshot = engine.markets["BTC-PERP"].snapshot()
        assert snapshot.timeframes["1m"].candles == 302 and snapshot.book is not None
        assert snapshot.funding is not None and snapshot.funding.open_interest == pytest.approx(1234.5)
        add_signal(database, "k1", "buy")
        engine.process_pending_signals()
        with database.session() as session:
            order = session.scalar(select(OrderRow))
        assert order is not None and order.status == "FILLED"
    finally:
        hub.stop()
        gateway.stop()


def add_signal_with_bracket(db: Database, key: str, stop: float, target: float) -> int:
    with db.session() as session:
        row = SignalRow(
            idempotency_key=key, source="tradingview", symbol="BTC-PERP", action="buy", raw={},
            stop_loss=stop, take_profit=target,
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


# brackets only: no partial take-profit, no trailing (those have their own scenario tests)
BRACKETS_ONLY = replace(PRESETS["moderate"], partial_take_profits="off", trailing_stop="off")


def test_bracket_take_profit_fills_at_the_candle_a_hand_calculation_says_and_cancels_the_stop(
    database: Database,
) -> None:
    import pandas as pd

    from shared.marketdata.feeds import load_candle_csv

    real = load_candle_csv(REAL_CANDLES)
    engine = make_engine(database, RecordingPublisher(), policy=BRACKETS_ONLY)
    engine.prepare()
    entry = float(real["close"].iloc[299])  # the engine fills at the last close before the replay starts
    stop, target = entry * 0.995, entry * 1.01  # reward/risk 2
    add_signal_with_bracket(database, "k1", stop, target)
    engine.process_pending_signals()
    with database.session() as session:
        children = {
            o.role: o for o in session.scalars(select(OrderRow).where(OrderRow.parent_client_id.is_not(None)))
        }
    assert set(children) == {"stop_loss", "take_profit"}
    assert all(c.status == "OPEN" and c.reduce_only for c in children.values())
    assert children["stop_loss"].trigger_price == pytest.approx(stop)
    assert children["take_profit"].limit_price == pytest.approx(target)
    # by hand: the first candle from index 300 whose high reaches the target (before any low reaches the stop)
    after = real.iloc[300:]
    hit_target = after.index[after["high"] >= target][0]
    assert (after.loc[:hit_target, "low"] > stop).all()
    for _ in range(hit_target - 300 + 1):
        engine.step_market()
    with database.session() as session:
        orders = {
            o.role: o for o in session.scalars(select(OrderRow).where(OrderRow.parent_client_id.is_not(None)))
        }
        (trade,) = session.scalars(select(TradeRow)).all()
        position = session.get(PositionRow, "BTC-PERP")
    assert orders["take_profit"].status == "FILLED" and orders["take_profit"].price == pytest.approx(target)
    assert orders["stop_loss"].status == "CANCELED"
    assert trade.exit_reason == "take_profit" and trade.exit_price == pytest.approx(target)
    assert trade.r_multiple == pytest.approx(trade.pnl / (trade.quantity * (entry - stop)))
    assert trade.closed_at == pd.Timestamp(real["timestamp"].iloc[hit_target]).to_pydatetime() + pd.Timedelta(
        minutes=1
    )
    assert position is not None and position.quantity == 0
    assert engine.exchange.open_orders() == []


def test_a_stop_on_the_wrong_side_is_vetoed(database: Database) -> None:
    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    price = engine.history["BTC-PERP"][-1].close
    add_signal_with_bracket(
        database, "k1", stop=price * 1.01, target=price * 1.02
    )  # stop above a long's entry
    engine.process_pending_signals()
    with database.session() as session:
        decision = session.scalar(select(DecisionRow))
    assert decision is not None and not decision.risk_approved
    assert "stop loss" in decision.risk_reason and "wrong side" in decision.risk_reason
    assert count(database, OrderRow) == 0


def test_closing_the_position_cancels_its_bracket(database: Database) -> None:
    engine = make_engine(database, RecordingPublisher(), policy=BRACKETS_ONLY)
    engine.prepare()
    price = engine.history["BTC-PERP"][-1].close
    add_signal_with_bracket(database, "k1", stop=price * 0.95, target=price * 1.10)
    engine.process_pending_signals()
    add_signal(database, "k2", "close")
    engine.process_pending_signals()
    with database.session() as session:
        statuses = {
            o.role: o.status
            for o in session.scalars(select(OrderRow).where(OrderRow.parent_client_id.is_not(None)))
        }
    assert statuses == {"stop_loss": "CANCELED", "take_profit": "CANCELED"}
    assert engine.exchange.open_orders() == []


def test_no_new_entry_while_an_earlier_orders_outcome_is_unknown(database: Database) -> None:
    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    add_signal(database, "k1", "buy")
    engine.executor.submit = lambda client_id, leverage, committed=None: None  # type: ignore[method-assign]  # outcome unknown
    engine.process_pending_signals()
    add_signal(database, "k2", "sell")
    engine.process_pending_signals()
    with database.session() as session:
        second = session.scalar(select(DecisionRow).where(DecisionRow.signal_id == 2))
        orders = session.scalars(select(OrderRow)).all()
    assert second is not None and "is not known yet" in second.rationale and not second.risk_approved
    assert len(orders) == 1


def test_a_flip_gets_a_bracket_for_the_new_position_only(database: Database) -> None:
    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    add_signal(database, "k1", "sell")
    engine.process_pending_signals()
    price = engine.history["BTC-PERP"][-1].close
    add_signal_with_bracket(
        database, "k2", stop=price * 0.95, target=price * 1.10
    )  # buy: flips short -> long
    engine.process_pending_signals()
    with database.session() as session:
        entry = session.scalar(select(OrderRow).where(OrderRow.signal_id == 2, OrderRow.role == "entry"))
        legs = session.scalars(
            select(OrderRow).where(OrderRow.parent_client_id == entry.client_id if entry else None)
        ).all()
        position = session.get(PositionRow, "BTC-PERP")
        (trade,) = session.scalars(select(TradeRow)).all()
    assert entry is not None and position is not None and entry.filled_quantity > position.quantity > 0
    by_role = {leg.role: leg for leg in legs}
    assert set(by_role) == {"stop_loss", "take_profit", "partial_take_profit"}
    assert by_role["stop_loss"].quantity == pytest.approx(position.quantity)
    assert by_role["take_profit"].quantity == pytest.approx(position.quantity)
    assert by_role["partial_take_profit"].quantity == pytest.approx(int(position.quantity * 500) / 1000)
    assert trade.exit_reason == "flip" and trade.side == "SELL"  # the short, closed by the flip


def test_a_paper_liquidation_is_booked_as_a_trade_with_its_reason(database: Database) -> None:
    """No stop, 20x leverage: a crash through the liquidation price closes the position on the exchange, and
    the next maintenance books it as our exit order and a trade recorded as a liquidation."""
    policy = replace(
        PRESETS["aggressive"], leverage=20, max_leverage=20, stop_atr_multiple=0, min_liquidation_atr=0,
        partial_take_profits="off", trailing_stop="off",
    )  # fmt: skip
    engine = make_engine(database, RecordingPublisher(), policy=policy)
    engine.prepare()
    add_signal(database, "k1", "buy")
    engine.process_pending_signals()
    (held,) = engine.exchange.exchange_positions()  # type: ignore[attr-defined]
    assert held.leverage == 20 and held.liquidation_price is not None
    crash = held.liquidation_price * 0.99
    engine.exchange.on_price("BTC-PERP", crash, engine.market_now() + pd.Timedelta(minutes=1), crash, crash)  # type: ignore[attr-defined]
    assert engine.exchange.positions() == []
    engine.maintain_orders()
    with database.session() as session:
        (trade,) = session.scalars(select(TradeRow)).all()
        exit_order = session.scalar(select(OrderRow).where(OrderRow.exit_kind == "liquidation"))
        position = session.get(PositionRow, "BTC-PERP")
    assert exit_order is not None and exit_order.status == "FILLED" and exit_order.reduce_only
    assert trade.exit_reason == "liquidation" and trade.exit_price == pytest.approx(held.liquidation_price)
    assert position is not None and position.quantity == 0
    engine.maintain_orders()  # booked once: a second pass changes nothing
    assert count(database, TradeRow) == 1


class KillWhileDeciding(FollowAnalyst):
    """Follows the signal; while it decides, another thread pulls the kill switch. Records whether that
    thread got through before the decision was made (``local`` analysts decide under the order lock)."""

    def __init__(self, engine_ref: list[Engine], local: bool) -> None:
        self.local = local
        self._engine = engine_ref
        self.kill_done_while_deciding: bool | None = None
        self.killer: threading.Thread | None = None

    def decide(self, signal: Signal, context: MarketContext) -> Decision:
        engine = self._engine[0]
        self.killer = threading.Thread(target=control.kill, args=(engine, "test", False))
        self.killer.start()
        self.killer.join(0.5 if self.local else 10)
        self.kill_done_while_deciding = not self.killer.is_alive()
        return super().decide(signal, context)


@pytest.mark.parametrize("local", [False, True])
def test_the_kill_switch_halts_at_once_whoever_decides(database: Database, local: bool) -> None:
    """An LLM analyst thinks outside the order lock: the whole kill switch goes through while it thinks. A
    local analyst (milliseconds) decides under the lock: the kill switch's cancellations wait for it. Either
    way HALTED is set at once, so the decision, checked under the lock, is vetoed and no order goes out."""
    holder: list[Engine] = []
    analyst = KillWhileDeciding(holder, local)
    engine = make_engine(
        database, RecordingPublisher(), policy=replace(PRESETS["moderate"], kelly_fraction=0)
    )
    engine.analyst = analyst
    holder.append(engine)
    engine.prepare()
    add_signal(database, "k1", "buy")
    engine.process_pending_signals()
    assert analyst.killer is not None
    analyst.killer.join(10)
    assert analyst.kill_done_while_deciding is (not local)
    with database.session() as session:
        decision = session.scalar(select(DecisionRow))
    assert decision is not None and decision.action == "open_long" and not decision.risk_approved
    assert decision.risk_reason == "trading HALTED: no new long (test)"
    assert count(database, OrderRow) == 0 and engine.guard.state == "HALTED"


def test_the_analyst_gets_the_raw_candles_only_where_the_snapshot_cannot_stand_in(database: Database) -> None:
    """With the market state's 1m indicators at hand the candles are not framed, and the rules analyst
    decides exactly as it would with them; with no snapshot indicators the candles are there."""
    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    price = engine.exchange.mark_price("BTC-PERP")
    assert price is not None
    context = engine._market_context("BTC-PERP", price, engine._books("BTC-PERP").positions)
    assert context.snapshot is not None and context.snapshot.timeframes["1m"].indicators
    assert context.candles.empty
    framed = replace(context, candles=engine.candles_frame("BTC-PERP"))
    assert len(framed.candles) == 300
    for action in ("buy", "sell"):
        signal = Signal(
            idempotency_key=action, source="tradingview", symbol="BTC-PERP", action=SignalAction(action)
        )
        assert engine.analyst.decide(signal, context) == engine.analyst.decide(signal, framed)
    bare = replace(context, snapshot=None, candles=engine.candles_frame("BTC-PERP"))
    assert engine.analyst.decide(Signal(idempotency_key="b", source="tradingview", symbol="BTC-PERP",
                                        action=SignalAction.BUY), bare).rationale  # fmt: skip
