"""The interval of a candle file, from its timestamps: the most common difference between consecutive candles
(a real feed misses a few candles, so the smallest or the mean difference would be wrong)."""

from __future__ import annotations

import numpy as np

from shared.marketdata.candles import NAMES


def detect_interval_s(stamps: np.ndarray) -> int:
    """The modal difference (seconds) between consecutive open times; ties go to the smaller one. Needs at
    least two candles."""
    if len(stamps) < 2:
        raise ValueError("the interval of a candle file needs at least 2 candles")
    differences = np.diff(np.asarray(stamps, dtype=np.int64))
    differences = differences[differences > 0]
    if not len(differences):
        raise ValueError("the candle times do not increase")
    values, counts = np.unique(differences, return_counts=True)
    return int(values[int(np.argmax(counts))])


def interval_name(seconds: int) -> str:
    """``1m``, ``5m`` ... for the intervals the engine knows, else e.g. ``90s``."""
    return NAMES.get(seconds, f"{seconds}s")
