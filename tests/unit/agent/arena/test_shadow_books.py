"""Shadow books: a signal the real book held is traded on paper by the raw signal, with the risk gate's
size, the taker fee and slippage, and closed by a later candle at its stop (hand-calculated)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.arena.arena import Arena
from agent.arena.book import ShadowPosition, candle_exit
from agent.arena.leaderboard import arena_report, leaderboard_row, records
from agent.risk.gate import RiskContext, assess
from agent.risk.presets import policy_from_settings
from shared.config import load_settings
from shared.db import AiCallRow, Database, ShadowTradeRow
from shared.models import Candle, Decision, DecisionAction, Position, Side, Signal, SignalAction

T0 = datetime(2022, 1, 3, 12, 0, tzinfo=UTC)
FEE, SLIP = 0.00035, 2.0


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'arena.db'}")
    database.migrate()
    return database


def position(side: Side, stop: float | None, target: float | None) -> ShadowPosition:
    return ShadowPosition(1, "follow", 1, "BTC-PERP", side, 0.5, 100.0, T0, stop, target, FEE, SLIP)


def test_a_stop_fills_at_the_stop_or_at_the_open_of_a_gap_and_pays_both_fees() -> None:
    long = position(Side.BUY, 95.0, 110.0)
    done = candle_exit(long, 99.0, 100.0, 94.0, T0)
    assert done is not None and done.reason == "stop"
    exit_price = 95.0 * (1 - SLIP / 10_000)
    assert done.price == pytest.approx(exit_price)
    assert done.fees == pytest.approx(FEE * 0.5 * (100.0 + exit_price))
    assert done.pnl == pytest.approx((exit_price - 100.0) * 0.5 - FEE * 0.5 * (100.0 + exit_price))
    gap = candle_exit(long, 93.0, 93.5, 92.0, T0)  # opened below the stop: fills at the open
    assert gap is not None and gap.price == pytest.approx(93.0 * (1 - SLIP / 10_000))
    both = candle_exit(long, 100.0, 111.0, 94.0, T0)  # stop and target in one candle: the stop
    assert both is not None and both.reason == "stop"
    short = position(Side.SELL, 105.0, 90.0)
    target = candle_exit(short, 95.0, 96.0, 89.0, T0)
    assert target is not None and target.reason == "target" and target.price == 90.0
    assert target.pnl == pytest.approx((100.0 - 90.0) * 0.5 - FEE * 0.5 * 190.0)
    assert candle_exit(short, 100.0, 104.0, 91.0, T0) is None


def test_a_held_signal_is_traded_by_the_baseline_and_its_pnl_is_stored(db: Database) -> None:
    settings = load_settings(kelly_fraction=0)
    policy = policy_from_settings(settings)
    signal = Signal("tv:1", "tradingview", "BTC-PERP", SignalAction.BUY, price=40_000.0, stop_loss=39_600.0)
    context = RiskContext(
        symbol="BTC-PERP", price=40_000.0, position=Position("BTC-PERP", 0.0, 0.0), equity=10_000.0,
        free_collateral=10_000.0, blocked="the outcome of order x is not known yet", taker_fee=FEE,
        slippage_bps=SLIP, step_size=0.001, min_quantity=0.001,
    )  # fmt: skip
    held = Decision(DecisionAction.HOLD, 0.0, "the outcome of order x is not known yet", "engine")
    assert not assess(held, signal, context, policy).approved  # the real book did not trade it
    arena = Arena(db, "rules")
    decided = arena.decide(7, signal, held, context, policy, lambda a: None, T0)  # type: ignore[arg-type,return-value]
    assert decided["follow"].action is DecisionAction.OPEN_LONG and decided["rules"] is held
    follow = Decision(DecisionAction.OPEN_LONG, 1.0, "", "follow", stop_loss=39_600.0)
    sized = assess(follow, signal, replace_blocked(context), policy)
    assert sized.approved and sized.quantity > 0
    entry = 40_000.0 * (1 + SLIP / 10_000)
    arena.on_candle(
        Candle("BTC-PERP", T0, 40_010.0, 40_100.0, 39_900.0, 40_050.0, 1.0), T0 + timedelta(minutes=1)
    )
    assert "BTC-PERP" in arena.open["follow"]  # not reached yet
    arena.on_candle(Candle("BTC-PERP", T0 + timedelta(minutes=1), 39_800.0, 39_850.0, 39_500.0, 39_550.0, 1.0),
                    T0 + timedelta(minutes=2))  # fmt: skip
    assert "BTC-PERP" not in arena.open["follow"]
    with db.session() as session:
        (row,) = session.query(ShadowTradeRow).all()
        assert (row.analyst, row.signal_id, row.status, row.exit_reason) == ("follow", 7, "CLOSED", "stop")
        exit_price = 39_600.0 * (1 - SLIP / 10_000)
        expected = (exit_price - entry) * sized.quantity - FEE * sized.quantity * (entry + exit_price)
        assert row.quantity == pytest.approx(sized.quantity)
        assert row.entry_price == pytest.approx(entry)
        assert row.pnl == pytest.approx(expected)
        assert row.pnl < 0


def replace_blocked(context: RiskContext) -> RiskContext:
    from dataclasses import replace

    return replace(context, blocked="")


def test_open_shadow_positions_survive_a_restart(db: Database) -> None:
    with db.session() as session:
        session.add(ShadowTradeRow(
            analyst="follow", signal_id=3, symbol="BTC-PERP", side="SELL", quantity=0.2, entry_price=100.0,
            opened_at=T0, stop_price=101.0, take_profit=None, initial_risk=0.2, taker_fee=0.0, slippage_bps=0.0,
            status="OPEN", exit_reason="", fees=0.0, pnl=0.0,
        ))  # fmt: skip
    arena = Arena(db, "rules")
    arena.load()
    assert arena.open["follow"]["BTC-PERP"].side is Side.SELL
    arena.on_candle(Candle("BTC-PERP", T0, 100.0, 101.5, 99.5, 101.2, 1.0), T0 + timedelta(minutes=1))
    with db.session() as session:
        (row,) = session.query(ShadowTradeRow).all()
        assert row.status == "CLOSED" and row.pnl == pytest.approx(-0.2)


def test_the_leaderboard_counts_pnl_drawdown_wins_and_llm_cost(db: Database) -> None:
    def trade(analyst: str, pnl: float, day: int) -> ShadowTradeRow:
        return ShadowTradeRow(
            analyst=analyst, signal_id=day, symbol="BTC-PERP", side="BUY", quantity=1.0, entry_price=100.0,
            opened_at=T0 + timedelta(days=day), stop_price=90.0, take_profit=None, initial_risk=10.0,
            taker_fee=0.0, slippage_bps=0.0, status="CLOSED", exit_price=100.0 + pnl,
            closed_at=T0 + timedelta(days=day, hours=1), exit_reason="stop" if pnl < 0 else "target", fees=0.0,
            pnl=pnl,
        )  # fmt: skip

    with db.session() as session:
        session.add_all([trade("follow", 100.0, 0), trade("follow", -50.0, 1), trade("claude", 200.0, 0),
                         trade("claude", -300.0, 1), trade("claude", 50.0, 2)])  # fmt: skip
        session.add(AiCallRow(provider="claude", model="m", prompt_version="v", prompt_hash="h", signal_key="k",
                              prompt="p", cost_usd=1.25))  # fmt: skip
    report = arena_report(db, ["follow", "claude"], 10_000.0, pnl=40.0, marks={}, now=T0 + timedelta(days=3))
    base, (claude,) = report["baseline"], report["arena"]
    assert (base["analyst"], base["pnl"], base["trades"], base["win_rate"]) == ("follow", 50.0, 2, 0.5)
    assert base["return_pct"] == pytest.approx(0.5)
    assert base["max_drawdown_pct"] == pytest.approx(-50.0 / 10_100.0 * 100)
    assert base["llm_cost_usd"] == 0.0 and base["pnl_net_of_llm_cost"] == 50.0
    assert claude["pnl"] == pytest.approx(-50.0) and claude["trades"] == 3
    assert claude["win_rate"] == pytest.approx(2 / 3)
    assert claude["max_drawdown_pct"] == pytest.approx(-300.0 / 10_200.0 * 100)
    assert claude["llm_cost_usd"] == 1.25 and claude["pnl_net_of_llm_cost"] == pytest.approx(-51.25)
    assert report["llm_cost_usd"] == 1.25 and report["pnl_net_of_llm_cost"] == pytest.approx(38.75)
    assert leaderboard_row("x", records(db, "none", {}, T0), 10_000.0, 0.0)["trades"] == 0
