"""Benchmark: the full indicator set over one year of 1-minute candles, ours against ``ta``.

The year (525,600 candles) is built by chaining the real BTC month's log-returns end to end, with each
candle's high/low/open kept in proportion to its close and the real volumes reused. Prints our time, ta's
time and the ratio (targets: under 1 s, at least 10x faster), then the time to fold one new 1m candle
into 10 symbols x 6 timeframes with the incremental indicators (target under 5 ms) and that state's peak
memory.

    python bench/indicators.py [--rows 525600]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.indicators import INDICATOR_COLUMNS, IncrementalIndicators, compute, compute_reference  # noqa: E402
from shared.marketdata.feeds import load_candle_csv  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"
YEAR = 525_600


def synthetic_year(rows: int) -> pd.DataFrame:
    month = load_candle_csv(REAL)
    close = month["close"].to_numpy()
    returns = np.diff(np.log(close))
    ratios = {c: (month[c].to_numpy() / close)[1:] for c in ("open", "high", "low")}
    volume = month["volume"].to_numpy()[1:]
    repeats = -(-rows // len(returns))
    closes = close[0] * np.exp(np.cumsum(np.tile(returns, repeats)[:rows]))
    frame = pd.DataFrame(
        {
            "open": closes * np.tile(ratios["open"], repeats)[:rows],
            "high": closes * np.tile(ratios["high"], repeats)[:rows],
            "low": closes * np.tile(ratios["low"], repeats)[:rows],
            "close": closes,
            "volume": np.tile(volume, repeats)[:rows],
        },
        index=pd.date_range("2023-01-01", periods=rows, freq="1min", tz="UTC"),
    )
    return frame


def warm_states(rows: np.ndarray) -> list[IncrementalIndicators]:
    """10 symbols x 6 timeframes of incremental state, each fed the same history."""
    states = [IncrementalIndicators() for _ in range(60)]
    for row in rows:
        values = tuple(map(float, row))
        for state in states:
            state.update(*values)
    return states


def best_of(runs: int, action: object) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=YEAR)
    args = parser.parse_args()
    candles = synthetic_year(args.rows)
    print(f"candles                     {len(candles):,}")
    ours_s = best_of(3, lambda: compute(candles))
    ta_s = best_of(1, lambda: compute_reference(candles))
    ratio = ta_s / ours_s
    print(f"ours (best of 3)            {ours_s:.3f} s   target < 1 s: {'PASS' if ours_s < 1 else 'MISS'}")
    print(f"ta                          {ta_s:.3f} s")
    print(f"ratio ta / ours             {ratio:.1f}x   target >= 10x: {'PASS' if ratio >= 10 else 'MISS'}")

    rows = candles[["open", "high", "low", "close", "volume"]].to_numpy()[:2000]
    states = warm_states(rows[:1000])
    folds = []
    for row in rows[1000:]:
        values = tuple(map(float, row))
        started = time.perf_counter()
        for state in states:
            state.update(*values)
        folds.append(time.perf_counter() - started)
    p50, p99 = statistics.median(folds) * 1000, float(np.percentile(folds, 99)) * 1000
    verdict = "PASS" if p99 < 5 else "MISS"
    print(
        f"fold 1 candle into 10 x 6 states (all closing)  p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
        f"target < 5 ms: {verdict}"
    )
    tracemalloc.start()
    warm_states(rows[:1000])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"incremental state peak mem  {peak / 1024:.0f} KiB for 60 states "
        f"({len(INDICATOR_COLUMNS)} columns each)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
