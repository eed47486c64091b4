"""Benchmark: backtests, bars per second, ours against backtesting.py on the same data in one run.

1. The full pipeline (rules analyst on EMA20/50 15m crosses, risk gate with the moderate preset, paper
   exchange, stops, partial take-profits, trailing stops, journal) over one year of 1-minute candles (built
   by chaining the real BTC month's returns, as bench/indicators.py does). Twice: with the default settings,
   and with KELLY_FRACTION=0 (no source is ever stopped for lack of edge, so it trades all year).
2. A simple strategy, like for like in both engines, on 1-minute candles with its SMAs on 15m (then 1h)
   candles aggregated from them: long when SMA20 crosses above SMA50, short when it crosses below (always
   in the market once the first cross came), 10 % of equity rounded down to 0.001 BTC, the same taker fee,
   no slippage, no stops. Ours: INTERNAL_SIGNALS=sma_cross with the ``follow`` analyst and every exit rule
   off. backtesting.py: ``FractionalBacktest`` (units of 0.001 BTC) with the conventions of our engine:
   - the signal candle: the 1m candle that closes a 15m candle (its SMAs are known from that close; the
     crosses follow the built-in ``sma_cross``, ``agent.strategies.builtin``: the sign of SMA20 - SMA50 at
     this close against the previous close, neither NaN, this one not 0);
   - the fill: at that candle's close (ours: a market order on the paper exchange at the mark, which is the
     close of the candle just folded in; backtesting.py: ``trade_on_close=True``), the reversal in one go
     (``exclusive_orders=True``), sized from the equity at the decision (cash + open profit);
   - the warm-up: both read the file from its first row (the SMAs' history) and trade from row ``HISTORY``
     (300) on, the first cross compared against the first close seen there;
   - the end: the last trade is left open in both (``finalize_trades=False``; ours never closes it).
   The trade lists must match one to one (entry and exit time, side, quantity, prices within a tick, PnL
   within 1e-6 relative), or the benchmark fails. On the real month and on the year; the ratio is ours /
   theirs in bars/s over the same run, with the machine's load average printed beside.

Targets: the simple strategy at least as fast as backtesting.py; the full pipeline over a year under 60 s.

    python bench/backtest.py [--rows 525600] [--skip-year]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("BLUEFINAI_ENV_FILE", "")

from indicators import YEAR, synthetic_year  # noqa: E402

from agent.analytics.performance import TradeRecord  # noqa: E402
from agent.backtest.run import HISTORY, BacktestRequest, BacktestResult, run_backtest  # noqa: E402
from agent.engine.engine import Engine  # noqa: E402
from bench.machine import load  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"
TAKER_FEE = 0.0005
FRACTION = 0.1  # of equity per position (MAX_POSITION_SIZE)
STEP = 0.001  # BTC-PERP's quantity step: backtesting.py trades whole units of it
TICK = 0.1  # BTC-PERP's price tick
FAST, SLOW = 20, 50
RULES = {"15m": "15min", "1h": "1h"}
SIMPLE = {
    "ai_model_provider": "follow", "internal_signals": "sma_cross", "internal_signal_timeframe": "15m",
    "stop_atr_multiple": 0, "partial_take_profits": "off", "trailing_stop": "off", "stagnant_exit_hours": 0,
    "funding_exit_daily": 0, "level_break_exit": False, "review_exits": False, "exit_on_reversal": False,
    "min_confidence": 0, "kelly_fraction": 0, "slippage_bps": 0, "taker_fee": TAKER_FEE,
    "max_daily_loss": 1, "max_drawdown": 1, "max_position_size": FRACTION,
}  # fmt: skip


@dataclass(frozen=True)
class Trade:
    """One closed trade as both engines can state it; times are the close times of the fill candles."""

    side: str  # "BUY" a long, "SELL" a short
    quantity: float
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    pnl: float  # net of both legs' fees

    def __str__(self) -> str:
        return (
            f"{self.side:<4} {self.quantity:.3f} {self.entry_time:%m-%d %H:%M} @ {self.entry_price:.1f} -> "
            f"{self.exit_time:%m-%d %H:%M} @ {self.exit_price:.1f}  pnl {self.pnl:+.6f}"
        )


def our_trades(records: list[TradeRecord]) -> list[Trade]:
    return [
        Trade(r.side, abs(r.quantity), r.opened_at, r.closed_at, r.entry_price, r.exit_price, r.pnl)
        for r in records
    ]


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


def spread_at_closes(
    opens: pd.DatetimeIndex, close: np.ndarray, timeframe: str
) -> tuple[np.ndarray, np.ndarray]:
    """Which 1m rows close a ``timeframe`` candle (built from the 1m candles opened at ``opens``; the data
    has no gaps, so a candle closes with its last minute, the one ending on its boundary), and SMA20 - SMA50
    of those candles on them."""
    ends = opens + pd.Timedelta(minutes=1)
    closing = np.asarray(ends == ends.floor(RULES[timeframe]))
    closes = pd.Series(close[closing])
    spread = np.full(len(close), np.nan)
    spread[closing] = (closes.rolling(FAST).mean() - closes.rolling(SLOW).mean()).to_numpy()
    return closing, spread


def theirs(candles: pd.DataFrame, timeframe: str, first_row: int = HISTORY) -> tuple[float, list[Trade]]:
    """The same SMA crossover in backtesting.py, with our engine's conventions: seconds and closed trades."""
    import warnings
    from unittest.mock import patch

    import backtesting.backtesting
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    class SmaCross(Strategy):
        def init(self) -> None:
            # plain arrays, not self.I: backtesting.py would start next() only after the indicators' warm-up
            # (one row after the first non-NaN), and miss the close our engine compares the first cross with
            self.closing, self.spread = spread_at_closes(self.data.index, self.data.Close, timeframe)
            self.before = math.nan

        def next(self) -> None:
            row = len(self.data) - 1
            if row < first_row or not self.closing[row]:
                return
            before, now = self.before, self.spread[row]
            self.before = now
            if math.isnan(before) or math.isnan(now) or now == 0 or (before > 0) == (now > 0):
                return
            # in units of STEP (prices here are per unit): 10 % of equity rounded down, as our sizing does
            units = math.floor(self.equity * FRACTION / self.data.Close[-1] + 1e-9)
            if now > 0:
                self.buy(size=units)
            else:
                self.sell(size=units)

    data = candles.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet = patch.object(backtesting.backtesting, "_tqdm", lambda rows, **_: rows)  # no progress bar
        started = time.perf_counter()
        with quiet:
            stats = FractionalBacktest(
                data, SmaCross, cash=10_000, commission=TAKER_FEE, trade_on_close=True,
                exclusive_orders=True, finalize_trades=False, fractional_unit=STEP,
            ).run()  # fmt: skip
        elapsed = time.perf_counter() - started
    minute = timedelta(minutes=1)
    trades = [
        Trade(
            "BUY" if t.Size > 0 else "SELL", abs(float(t.Size)), t.EntryTime.to_pydatetime() + minute,
            t.ExitTime.to_pydatetime() + minute, float(t.EntryPrice), float(t.ExitPrice), float(t.PnL),
        )
        for t in stats["_trades"].itertuples()
    ]  # fmt: skip
    return elapsed, trades


def mismatches(mine: list[Trade], reference: list[Trade]) -> list[str]:
    """Every difference between the two trade lists (empty: they match one to one)."""
    problems = (
        [f"{len(mine)} trades here, {len(reference)} in backtesting.py"]
        if len(mine) != len(reference)
        else []
    )
    for number, (a, b) in enumerate(zip(mine, reference, strict=False), start=1):
        same = (
            a.side == b.side and a.entry_time == b.entry_time and a.exit_time == b.exit_time
            and abs(a.quantity - b.quantity) < STEP / 1000
            and abs(a.entry_price - b.entry_price) < TICK and abs(a.exit_price - b.exit_price) < TICK
            and math.isclose(a.pnl, b.pnl, rel_tol=1e-6, abs_tol=1e-9)
        )  # fmt: skip
        if not same:
            problems.append(f"trade {number}: ours {a} / backtesting.py {b}")
    return problems


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


def compare(name: str, candles: pd.DataFrame, path: Path, timeframe: str) -> tuple[float, int]:
    """Both engines on the same candles: prints the figures, raises SystemExit if the trades differ.
    Returns the ratio (ours / backtesting.py in bars/s) and the number of matched trades."""
    print(f"simple SMA{FAST}/{SLOW} {timeframe} cross on {name} ({load()}):")
    seconds, result, deciding = ours(path, {**SIMPLE, "internal_signal_timeframe": timeframe})
    their_seconds, reference = theirs(candles, timeframe)
    mine = our_trades(result.trades)
    bars = result.candles  # the rows both trade over (from row HISTORY on), the same in both
    ratio = their_seconds / seconds
    pnl = sum(t.pnl for t in mine)
    print(line("ours (real engine, follow analyst)", seconds, bars, f"{len(mine)} trades, pnl {pnl:+.2f}"))
    print(line("  of which the candles", seconds - deciding, bars, "(fast-forward over quiet candles)"))
    per_signal = 1000 * deciding / max(result.signals, 1)
    label = "  of which the signals"
    print(f"  {label:<38} {deciding:8.2f} s  {per_signal:7.1f} ms per signal (decision to fills, journalled)")
    their_pnl = sum(t.pnl for t in reference)
    print(line("backtesting.py", their_seconds, bars, f"{len(reference)} trades, pnl {their_pnl:+.2f}"))
    problems = mismatches(mine, reference)
    if problems:
        print("  TRADES DIFFER:", *problems[:20], sep="\n    ")
        raise SystemExit(f"{name}, {timeframe}: {len(problems)} differences between the engines' trades")
    print(
        f"  trades: {len(mine)} matched one to one (times, side, quantity, prices, PnL); last one left open"
    )
    verdict = "OK" if ratio >= 1 else "SLOWER"
    print(f"  ratio ours/backtesting.py (bars/s): {ratio:.2f}x  {verdict} (target >= 1)  ({load()})")
    return ratio, len(mine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=YEAR, help="1m candles of the synthetic year")
    parser.add_argument("--skip-year", action="store_true", help="the real month only")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-backtest-"))
    real = month()
    real_path = write(real, folder, "month")
    for timeframe in RULES:
        compare("the real month", real, real_path, timeframe)
    if args.skip_year:
        return 0
    year = synthetic_year(args.rows)
    year_path = write(year, folder, "year")
    for timeframe in RULES:
        compare("the year", year, year_path, timeframe)
    print(f"full pipeline over the year ({len(year):,} 1m candles; {load()}):")
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
