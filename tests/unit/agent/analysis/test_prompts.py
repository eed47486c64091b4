"""Prompts: the market across timeframes, the portfolio and limits, the analyst's own track record by signal
source and regime (from the journal), and the token budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from agent.analysis.base import MarketContext
from agent.analysis.prompts import MAX_PROMPT_TOKENS, VERSION, build_prompt, estimate_tokens
from agent.analysis.track_record import track_record
from shared.db import Database, TradeRow
from shared.marketdata.feeds import ReplayFeed
from shared.marketdata.snapshot import MarketState
from shared.models import Position, Signal, SignalAction
from tests.conftest import REAL_CANDLES


@pytest.fixture(scope="module")
def market() -> tuple[MarketState, pd.DataFrame]:
    feed = ReplayFeed(REAL_CANDLES, "BTC-PERP", start_index=0)
    state = MarketState("BTC-PERP", "replay")
    candles = [feed.next_candle() for _ in range(3000)]
    for candle in candles:
        state.add_candle(candle)
    frame = pd.DataFrame(
        [(c.open, c.high, c.low, c.close, c.volume) for c in candles[-300:]],
        columns=["open", "high", "low", "close", "volume"],
        index=pd.DatetimeIndex([c.open_time for c in candles[-300:]]),
    )
    return state, frame


def journal(db: Database) -> None:
    """Six closed trades of claude: tradingview 2 wins (2R, 1R) and 1 loss (-1R) in trending_up; internal
    1 loss (-1R) in ranging; plus one trade of another analyst that must not count."""
    start = datetime(2022, 1, 1, tzinfo=UTC)
    rows = [
        ("tradingview", "trending_up", 200.0, 2.0), ("tradingview", "trending_up", 100.0, 1.0),
        ("tradingview", "trending_up", -100.0, -1.0), ("internal:ema_cross", "ranging", -100.0, -1.0),
    ]  # fmt: skip
    with db.session() as session:
        for n, (source, regime, pnl, r) in enumerate(rows):
            session.add(
                TradeRow(
                    symbol="BTC-PERP", side="BUY", quantity=0.1, entry_price=40_000, exit_price=41_000, pnl=pnl,
                    fees=1.0, opened_at=start + timedelta(hours=n), closed_at=start + timedelta(hours=n, minutes=30),
                    exit_reason="take_profit" if pnl > 0 else "stop_loss", close_client_id=f"c{n}",
                    signal_source=source, analyst="claude", regime=regime, initial_risk=100.0, r_multiple=r,
                )
            )  # fmt: skip
        session.add(
            TradeRow(
                symbol="BTC-PERP", side="SELL", quantity=0.1, entry_price=40_000, exit_price=39_000, pnl=500.0,
                fees=1.0, opened_at=start, closed_at=start, exit_reason="take_profit", close_client_id="x",
                signal_source="tradingview", analyst="rules", regime="trending_up", r_multiple=5.0,
            )
        )  # fmt: skip


def context(market: tuple[MarketState, pd.DataFrame], record: dict | None = None) -> MarketContext:  # type: ignore[type-arg]
    state, frame = market
    return MarketContext(
        "BTC-PERP", float(frame["close"].iloc[-1]), frame, Position("BTC-PERP", 0, 0), state.snapshot(),
        portfolio=(Position("ETH-PERP", -2.0, 3_000.0),), limits={"max_position_size": 0.1, "trading_state": "ACTIVE"},
        track_record=record,
    )  # fmt: skip


def test_the_track_record_by_source_and_regime_comes_from_the_journal(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'j.db'}")
    db.migrate()
    journal(db)
    record = track_record(db, "claude")
    # total R: total pnl / total initial risk = (200 + 100 - 100 - 100) / (4 x 100) = 0.25
    assert record["overall"] == {
        "trades": 4,
        "win_rate": 0.5,
        "average_r": 0.25,
        "pnl": 100.0,
        "total_r": 0.25,
    }
    # tradingview: 2 of 3 won, R (2 + 1 - 1) / 3; total R 200 / 300
    assert record["by_signal_source"]["tradingview"] == {
        "trades": 3,
        "win_rate": 0.667,
        "average_r": 0.667,
        "pnl": 200.0,
        "total_r": 0.667,
    }
    assert record["by_regime"]["ranging"] == {
        "trades": 1, "win_rate": 0.0, "average_r": -1.0, "pnl": -100.0, "total_r": -1.0,
    }  # fmt: skip
    assert [t["r"] for t in record["recent"]] == [2.0, 1.0, -1.0, -1.0]


def test_the_prompt_carries_every_section(tmp_path: Path, market: tuple[MarketState, pd.DataFrame]) -> None:
    db = Database(f"sqlite:///{tmp_path / 'j.db'}")
    db.migrate()
    journal(db)
    signal = Signal("k", "tradingview", "BTC-PERP", SignalAction.BUY, price=47_000.0, strategy="breakout")
    prompt = build_prompt(signal, context(market, track_record(db, "claude")), max_leverage=5)
    text = prompt.text
    assert prompt.version == VERSION == "decision_v2" and len(prompt.hash) == 64
    state, _ = market
    for timeframe in ("5m", "15m", "1h"):
        view = state.snapshot().timeframes[timeframe]
        assert (
            f"{timeframe}: close {view.last_closed.close:g}, trend {view.trend}, RSI {view.indicators['rsi']:.1f}"
            in text
        )  # type: ignore[union-attr]
    assert '"strategy": "breakout"' in text
    assert (
        'This source\'s record with you: {"average_r": 0.667, "pnl": 200.0, "total_r": 0.667, "trades": 3, '
        '"win_rate": 0.667}' in text
    )
    assert '"trending_up": {"average_r": 0.667' in text  # by regime
    assert '"symbol": "ETH-PERP", "quantity": -2.0' in text and '"max_position_size": 0.1' in text
    assert "leverage at most 5" in text and prompt.tokens <= MAX_PROMPT_TOKENS


def test_a_new_source_and_an_empty_journal_are_said_plainly(market: tuple[MarketState, pd.DataFrame]) -> None:
    signal = Signal("k", "internal:sma_cross", "BTC-PERP", SignalAction.SELL)
    text = build_prompt(signal, context(market, None), max_leverage=5).text
    assert "no closed trades from this source yet" in text and "overall: no closed trades yet" in text


def test_the_token_budget_drops_the_least_important_sections_first(
    market: tuple[MarketState, pd.DataFrame],
) -> None:
    signal = Signal("k", "tradingview", "BTC-PERP", SignalAction.BUY)
    research = {"summary": "x" * 40_000}
    prompt = build_prompt(signal, context(market), max_leverage=5, research=research)
    assert prompt.tokens <= MAX_PROMPT_TOKENS and "x" * 100 not in prompt.text
    assert "(Left out for the token budget: research.)" in prompt.text
    assert "15m: close" in prompt.text  # the core stays
    full = build_prompt(signal, context(market), max_leverage=5).tokens
    tight = build_prompt(signal, context(market), max_leverage=5, max_tokens=full - 60)
    assert estimate_tokens(tight.text) <= full - 60
    assert "(Left out for the token budget: recent, levels" in tight.text and "15m: close" in tight.text
    cut = build_prompt(signal, context(market), max_leverage=5, max_tokens=200)
    assert estimate_tokens(cut.text) <= 200 and cut.text.endswith("(Cut at the token budget.)\n")
    small = build_prompt(signal, context(market), max_leverage=5, research={"summary": "ETF inflows"})
    assert "ETF inflows" in small.text and "Left out" not in small.text
    assert small.hash != prompt.hash
