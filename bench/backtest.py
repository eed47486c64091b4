"""Benchmark: backtests, bars per second, ours against backtesting.py on the same data in one run.

1. The full pipeline (rules analyst on EMA20/50 15m crosses, risk gate with the moderate preset, paper
   exchange, stops, partial take-profits, trailing stops, journal) over one year of 1-minute candles (built
   by chaining the real BTC month's returns, as bench/indicators.py does). Twice: with the default settings,
   and with KELLY_FRACTION=0 (no source is ever stopped for lack of edge, so it trades all year).
2. A simple strategy, the same in both engines: SMA20/SMA50 of 15m candles, evaluated on every 1m bar;
   long on a cross up, short on a cross down (always in the market), 10 % of equity, the same taker fee,
   no slippage, no stops. Ours: INTERNAL_SIGNALS=sma_cross with the ``follow`` analyst and every exit rule
   off. backtesting.py: ``FractionalBacktest`` with ``resample_apply`` SMAs, ``trade_on_close=True``,
   ``exclusive_orders=True``. On the real month and on the year; the ratio is ours / theirs in bars/s.

Targets: the simple strategy at least as fast as backtesting.py; the full pipeline over a year under 60 s.

    python bench/backtest.py [--rows 525600] [--skip-year]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("BLUEFINAI_ENV_FILE", "")

from indicators import YEAR, synthetic_year  # noqa: E402

from agent.backtest import BacktestRequest, BacktestResult, run_backtest  # noqa: E402
from agent.engine import Engine  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"
TAKER_FEE = 0.0005
SIMPLE = {
    "ai_model_provider": "follow", "internal_signals": "sma_cross", "internal_signal_timeframe": "15m",
    "stop_atr_multiple": 0, "partial_take_profits": "off", "trailing_stop": "off", "stagnant_exit_hours": 0,
    "funding_exit_daily": 0, "level_break_exit": False, "review_exits": False, "exit_on_reversal": False,
    "min_confidence": 0, "kelly_fraction": 0, "slippage_bps": 0, "taker_fee": TAKER_FEE,
    "max_daily_loss": 1, "max_drawdown": 1, "max_position_size": 0.1,
}  # fmt: skip


def ours(path: Path, overrides: dict[str, Any]) -> tuple[float, BacktestResult, float]:
    """Seconds in all, the result, and the seconds spent deciding signals and placing their orders."""
    spent = [0.0]
    original = Engine.process_pending_signals

    def timed(engine: Engine) -> int:
        started = time.perf_counter()
        try:
            return original(engine)
        finally:
            spent[0] += time.perf_counter() - started

    Engine.process_pending_signals = timed  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        result = run_backtest(BacktestRequest({"BTC-PERP": path}, overrides=overrides, progress=False))
        return time.perf_counter() - started, result, spent[0]
    finally:
        Engine.process_pending_signals = original  # type: ignore[method-assign]


def theirs(candles: pd.DataFrame, timeframe: str) -> tuple[float, int, float]:
    """The same SMA crossover in backtesting.py: seconds, trades, total return."""
    import warnings

    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover, resample_apply

    def sma(values: pd.Series, window: int) -> pd.Series:
        return pd.Series(values).rolling(window).mean()

    class SmaCross(Strategy):
        def init(self) -> None:
            rule = {"15m": "15min", "1h": "1h"}[timeframe]
            self.fast = resample_apply(rule, sma, self.data.Close, 20)
            self.slow = resample_apply(rule, sma, self.data.Close, 50)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.buy(size=0.1)
            elif crossover(self.slow, self.fast):
                self.sell(size=0.1)

    data = candles.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        stats = FractionalBacktest(
            data, SmaCross, cash=10_000, commission=TAKER_FEE, trade_on_close=True, exclusive_orders=True,
            finalize_trades=True, fractional_unit=1e-6,
        ).run()  # fmt: skip
        elapsed = time.perf_counter() - started
    return elapsed, int(stats["# Trades"]), float(stats["Return [%]"]) / 100


def month() -> pd.DataFrame:
    frame = pd.read_csv(REAL)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("timestamp"), utc=True))
    return frame.astype(float)


def write(frame: pd.DataFrame, folder: Path, name: str) -> Path:
    path = folder / f"{name}.parquet"
    frame.rename_axis("timestamp").reset_index().to_parquet(path)
    return path


def line(label: str, seconds: float, bars: int, extra: str = "") -> str:
    return f"  {label:<38} {seconds:8.2f} s  {bars / seconds:10,.0f} bars/s  {extra}"


def compare(name: str, candles: pd.DataFrame, path: Path, timeframe: str) -> float:
    seconds, result, deciding = ours(path, {**SIMPLE, "internal_signal_timeframe": timeframe})
    their_seconds, their_trades, their_return = theirs(candles.iloc[300:], timeframe)  # we warm up on 300
    ratio = their_seconds / seconds
    bars = result.candles
    print(f"simple SMA20/50 {timeframe} cross on {name} ({bars:,} bars):")
    mine = f"{len(result.trades)} trades, return {result.metrics.total_return:+.2%}"
    print(line("ours (real engine, follow analyst)", seconds, bars, mine))
    print(line("  of which the candles", seconds - deciding, bars, "(fast-forward over quiet candles)"))
    per_signal = 1000 * deciding / max(result.signals, 1)
    label = "  of which the signals"
    print(f"  {label:<38} {deciding:8.2f} s  {per_signal:7.1f} ms per signal (decision to fills, journalled)")
    print(line("backtesting.py", their_seconds, bars, f"{their_trades} trades, return {their_return:+.2%}"))
    verdict = "OK" if ratio >= 1 else "SLOWER"
    print(f"  ratio ours/backtesting.py (bars/s): {ratio:.2f}x  {verdict} (target >= 1)")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=YEAR, help="1m candles of the synthetic year")
    parser.add_argument("--skip-year", action="store_true", help="the real month only")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-backtest-"))
    real = month()
    real_path = write(real, folder, "month")
    for timeframe in ("15m", "1h"):
        compare("the real month", real, real_path, timeframe)
    if args.skip_year:
        return 0
    year = synthetic_year(args.rows)
    year_path = write(year, folder, "year")
    for timeframe in ("15m", "1h"):
        compare("the year", year, year_path, timeframe)
    print(f"full pipeline over the year ({len(year):,} 1m candles):")
    runs = (
        ("default settings", {"internal_signals": "ema_cross"}),
        ("KELLY_FRACTION=0 (trades all year)", {"internal_signals": "ema_cross", "kelly_fraction": 0}),
    )
    for label, overrides in runs:
        seconds, result, _ = ours(year_path, overrides)
        verdict = "OK" if seconds < 60 else "OVER"
        counts = f"{result.signals} signals, {len(result.trades)} trades  {verdict} (target < 60 s)"
        print(line(label, seconds, result.candles, counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
