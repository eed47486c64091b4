"""STRATEGIES in a backtest: their signals (source strategy:<name>) go through the analyst and risk and
trade, and the fast-forward (stopping only at candles that signal) gives the same trades and equity as
stepping every candle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agent.backtest.run import BacktestRequest, run_backtest
from tests.unit.agent.backtest.test_backtest import data  # noqa: F401 - fixture

OVERRIDES = {
    "ai_model_provider": "follow", "internal_signals": "none", "min_confidence": 0, "kelly_fraction": 0,
    "strategies": "examples/strategies/ema_pullback.py:EmaPullback,sr_break_volume,rsi_divergence",
}  # fmt: skip


def test_strategies_trade_and_fast_forward_changes_nothing(data: Path) -> None:  # noqa: F811
    runs = {
        fast: run_backtest(
            BacktestRequest({"BTC-PERP": data}, overrides=OVERRIDES, progress=False, fast_forward=fast)
        )
        for fast in (False, True)
    }
    slow, fast = runs[False], runs[True]
    assert slow.signals >= 5
    assert len(slow.trades) >= 2
    assert slow.trades == fast.trades
    assert np.array_equal(slow.equity.to_numpy(), fast.equity.to_numpy())
