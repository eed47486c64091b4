"""bench/backtest.py's like-for-like comparison with backtesting.py, on the real month's first 3,000 minutes.

Our side always runs (against a trade list checked by hand); the comparison with backtesting.py needs the
bench extra (``pip install -e '.[bench]'``, which ``make bench`` does) and is skipped without it."""

from __future__ import annotations

import importlib.util
import math
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SLICE = 3000  # 1m rows: 300 of warm-up, SMA50 of 15m known from row 749 on, 4 closed trades


def _bench():
    name = "bench_backtest_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "backtest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2022, 1, day, hour, minute, tzinfo=UTC)


# Checked by hand: the SMA20/50 crosses of the 15m candles closing at these times (each fill at the close of
# the 1m candle that closes the 15m one), 10 % of ~10,000 USD at ~47,000 = 0.021 BTC (rounded down to
# 0.001), PnL = side x quantity x (exit - entry) - 0.0005 x quantity x (entry + exit). The fifth position,
# opened at 21:00 on the 2nd, is still open at the end of the slice and is no trade.
EXPECTED = [
    ("SELL", 0.021, _at(1, 14, 30), _at(1, 16, 15), 47030.0, 47422.0),
    ("BUY", 0.021, _at(1, 16, 15), _at(2, 4, 45), 47422.0, 47172.0),
    ("SELL", 0.021, _at(2, 4, 45), _at(2, 13, 15), 47172.0, 47209.0),
    ("BUY", 0.021, _at(2, 13, 15), _at(2, 21, 0), 47209.0, 47027.0),
]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    bench = _bench()
    if not bench.REAL.exists():
        pytest.skip(f"the real candles are not here: {bench.REAL}")
    candles = bench.month().iloc[:SLICE]
    path = bench.write(candles, tmp_path_factory.mktemp("bench"), "slice")
    _, result, _ = bench.ours(path, {**bench.SIMPLE, "internal_signal_timeframe": "15m"})
    return bench, candles, bench.our_trades(result.trades)


def test_our_trades_on_the_slice_are_the_hand_checked_ones(case):
    bench, candles, mine = case
    expected = []
    for side, quantity, opened, closed, entry, exit_ in EXPECTED:
        sign = 1 if side == "BUY" else -1
        pnl = sign * quantity * (exit_ - entry) - bench.TAKER_FEE * quantity * (entry + exit_)
        expected.append(bench.Trade(side, quantity, opened, closed, entry, exit_, pnl))
    assert bench.mismatches(mine, expected) == []
    # the fill convention: the close of the 1m candle that ends at the trade's time (the signal candle)
    closes = candles["close"]
    for trade in mine:
        assert trade.entry_price == closes[pd.Timestamp(trade.entry_time) - pd.Timedelta(minutes=1)]
        assert trade.exit_price == closes[pd.Timestamp(trade.exit_time) - pd.Timedelta(minutes=1)]


def test_the_signal_rows_match_the_15m_candles(case):
    bench, candles, mine = case
    closing, spread = bench.spread_at_closes(candles.index, candles["close"].to_numpy(), "15m")
    assert closing.sum() == SLICE // 15 and not math.isnan(spread[closing][-1])  # the last 15m is not closed
    crosses = [
        candles.index[row] + pd.Timedelta(minutes=1) for row in range(bench.HISTORY, SLICE) if closing[row]
    ]
    assert {t.entry_time for t in mine} <= set(crosses)


def test_backtesting_py_makes_the_same_trades(case):
    pytest.importorskip("backtesting", reason="backtesting.py is the bench extra: pip install -e '.[bench]'")
    bench, candles, mine = case
    _, reference = bench.theirs(candles, "15m")
    assert len(reference) == len(EXPECTED)
    assert bench.mismatches(mine, reference) == []


def test_a_difference_is_reported(case):
    bench, _, mine = case
    moved = [*mine[:-1], bench.Trade(*[*vars(mine[-1]).values()][:-1], mine[-1].pnl * (1 + 1e-5))]
    problems = bench.mismatches(mine, moved)
    assert len(problems) == 1 and problems[0].startswith("trade 4:")
    assert bench.mismatches(mine, mine[:-1]) == ["4 trades here, 3 in backtesting.py"]
