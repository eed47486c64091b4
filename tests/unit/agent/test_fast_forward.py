"""Fast-forward over quiet candles changes nothing: the same trades and the same equity, minute by minute,
as stepping every candle, across the rules that can act between signals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.backtest import BacktestRequest, run_backtest
from agent.engine import Engine
from agent.fast_forward import FastForward
from shared.marketdata.feeds import MarketFeed
from shared.models import Candle
from tests.unit.agent.test_backtest import alerts, data  # noqa: F401 - fixtures

FOLLOW = {
    "ai_model_provider": "follow", "internal_signals": "sma_cross", "internal_signal_timeframe": "15m",
    "stop_atr_multiple": 0, "partial_take_profits": "off", "trailing_stop": "off", "stagnant_exit_hours": 0,
    "level_break_exit": False, "review_exits": False, "min_confidence": 0, "kelly_fraction": 0,
}  # fmt: skip
CONFIGS: dict[str, dict[str, Any]] = {
    "rules, stops, partials, ATR trailing, exits": {"internal_signals": "ema_cross", "kelly_fraction": 0},
    "follow the SMA cross": FOLLOW,
    "tight breakers, pct trailing, time exits": {
        "internal_signals": "ema_cross",
        "internal_signal_timeframe": "5m",
        "kelly_fraction": 0,
        "max_daily_loss": 0.002,
        "max_drawdown": 0.004,
        "trailing_stop": "pct:0.3",
        "stagnant_exit_hours": 2,
    },
    "Kelly on, with a take-profit": {"internal_signals": "ema_cross", "partial_take_profits": "1:0.3,2:0.3"},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fast_forward_gives_the_same_trades_and_equity(name: str, data: Path, alerts: Path) -> None:  # noqa: F811
    overrides = {**CONFIGS[name], "signals_replay_file": str(alerts)}
    runs = {
        fast: run_backtest(
            BacktestRequest(
                {"BTC-PERP": data}, overrides=overrides, progress=False, fast_forward=fast, funding_rate=2e-5
            )
        )
        for fast in (False, True)
    }
    slow, fast = runs[False], runs[True]
    assert len(slow.trades) >= 5
    assert slow.trades == fast.trades
    assert slow.equity.index.equals(fast.equity.index)
    assert np.array_equal(slow.equity.to_numpy(), fast.equity.to_numpy())
    assert slow.metrics == fast.metrics


def test_most_candles_are_skipped(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    skipped: list[int] = []
    stepped: list[Candle] = []
    original_skip, original_step = FastForward.skip, Engine.on_candle

    def counting(self: FastForward, count: int) -> Any:
        skipped.append(count)
        return original_skip(self, count)

    def stepping(self: Engine, feed: MarketFeed, candle: Candle) -> None:
        stepped.append(candle)
        original_step(self, feed, candle)

    monkeypatch.setattr(FastForward, "skip", counting)
    monkeypatch.setattr(Engine, "on_candle", stepping)
    result = run_backtest(BacktestRequest({"BTC-PERP": data}, overrides=FOLLOW, progress=False))
    assert sum(skipped) + len(stepped) == result.candles
    assert sum(skipped) > 0.8 * result.candles
    # the SMA crosses are known ahead: only their candles and the trades' go through, not every 15m close
    assert len(stepped) < 0.25 * result.candles / 15
