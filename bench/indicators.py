"""Benchmark: the full indicator set over one year of 1-minute candles, ours against ``ta``.

The year (525,600 candles) is built by chaining the real BTC month's log-returns end to end, with each
candle's open/high/low kept in proportion to its close and the real volumes reused. Prints our time, ta's
time and the ratio (targets: under 1 s, at least 10x faster), the largest difference between the two, then
the time to fold one new 1m candle into 10 symbols x 6 timeframes of incremental state (target under 5 ms
for all 60) and the memory that state holds.

    python bench/indicators.py [--rows 525600]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import load  # noqa: E402
from shared.indicators import INDICATOR_COLUMNS, IncrementalIndicators, compute, compute_reference  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"
YEAR = 525_600
STATES = 10 * 6  # symbols x timeframes
OHLCV = ["open", "high", "low", "close", "volume"]
T = TypeVar("T")


def _load_month(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    stamps = pd.to_datetime(frame.pop("timestamp"), format="%Y-%m-%d %H:%M:%S.%f", utc=True)
    frame.index = pd.DatetimeIndex(stamps)
    return frame[OHLCV].astype(float).sort_index()


def synthetic_year(rows: int) -> pd.DataFrame:
    """``rows`` 1m candles: the real month's log-returns chained again and again from its first close."""
    month = _load_month(REAL)
    close = month["close"].to_numpy()
    returns = np.diff(np.log(close))
    repeats = -(-rows // len(returns))

    def tiled(values: np.ndarray) -> np.ndarray:
        return np.tile(values, repeats)[:rows]

    closes = close[0] * np.exp(np.cumsum(tiled(returns)))
    columns = {c: closes * tiled((month[c].to_numpy() / close)[1:]) for c in ("open", "high", "low")}
    columns |= {"close": closes, "volume": tiled(month["volume"].to_numpy()[1:])}
    return pd.DataFrame(columns, index=pd.date_range("2023-01-01", periods=rows, freq="1min", tz="UTC"))


def timed(runs: int, action: Callable[[], T]) -> tuple[float, T]:
    """Best wall time of ``runs`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def max_relative_error(ours: pd.DataFrame, reference: pd.DataFrame) -> tuple[float, str, bool]:
    """Largest |ours - ta| / |ta| over all columns (where ta is finite and non-zero), its column, and
    whether every column has NaN in the same rows."""
    worst, where, same_nan = 0.0, "", True
    for column in INDICATOR_COLUMNS:
        mine, theirs = ours[column].to_numpy(), reference[column].to_numpy()
        same_nan &= bool(np.array_equal(np.isnan(mine), np.isnan(theirs)))
        mask = np.isfinite(theirs) & (theirs != 0)
        error = float(np.max(np.abs(mine[mask] - theirs[mask]) / np.abs(theirs[mask]), initial=0.0))
        if error > worst:
            worst, where = error, column
    return worst, where, same_nan


def warm_states(rows: np.ndarray) -> list[IncrementalIndicators]:
    """10 symbols x 6 timeframes of incremental state, each fed the same history."""
    states = [IncrementalIndicators() for _ in range(STATES)]
    for row in rows:
        values = tuple(map(float, row))
        for state in states:
            state.update(*values)
    return states


def fold_times(states: list[IncrementalIndicators], rows: np.ndarray) -> list[float]:
    """Seconds to fold each row into every state (the worst case: every timeframe closes at once)."""
    folds = []
    for row in rows:
        values = tuple(map(float, row))
        started = time.perf_counter()
        for state in states:
            state.update(*values)
        folds.append(time.perf_counter() - started)
    return folds


def state_memory(rows: np.ndarray) -> tuple[int, int]:
    """(bytes held by 60 warmed states, peak bytes while folding one more candle into all of them)."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states = warm_states(rows[:-1])
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.reset_peak()
    fold_times(states, rows[-1:])
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return held, peak


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=YEAR, help="1m candles to build (default: one year)")
    args = parser.parse_args()
    candles = synthetic_year(args.rows)
    print(f"candles {len(candles):,} (1m, built from {REAL.name}); {load()}")

    ours_s, ours = timed(3, lambda: compute(candles))
    ta_s, reference = timed(1, lambda: compute_reference(candles))
    ratio = ta_s / ours_s
    print(f"ours compute() best of 3: {ours_s:.3f} s  target < 1 s: {verdict(ours_s < 1)}")
    print(f"ta compute_reference(): {ta_s:.3f} s")
    print(f"ratio ta / ours: {ratio:.1f}x  target >= 10x: {verdict(ratio >= 10)}")
    error, column, same_nan = max_relative_error(ours, reference)
    print(f"max relative difference ours vs ta: {error:.2e} ({column}); NaN rows identical: {same_nan}")

    rows = candles[OHLCV].to_numpy()[:1300]
    folds = fold_times(warm_states(rows[:300]), rows[300:])
    p50, p99 = statistics.median(folds) * 1e3, float(np.percentile(folds, 99)) * 1e3
    print(
        f"fold 1 candle into {STATES} states (10 symbols x 6 timeframes, all closing), {len(folds)} folds: "
        f"p50 {p50:.2f} ms  p99 {p99:.2f} ms  target p99 < 5 ms: {verdict(p99 < 5)}"
    )
    held, peak = state_memory(rows[:301])
    print(
        f"incremental state memory (tracemalloc): {held / 1024:.0f} KiB held by {STATES} states "
        f"({held / STATES / 1024:.1f} KiB each), peak {peak / 1024:.0f} KiB during a fold"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
