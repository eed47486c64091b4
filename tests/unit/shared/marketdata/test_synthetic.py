from __future__ import annotations

import numpy as np

from shared.marketdata.feeds import SyntheticFeed


def closes(seed: int, n: int = 20_000) -> np.ndarray:
    feed = SyntheticFeed("BTC-PERP", seed=seed)
    return np.array([c.close for c in feed.history(n)])


def test_same_seed_same_path_other_seed_other_path() -> None:
    assert np.array_equal(closes(7, 500), closes(7, 500))
    assert not np.array_equal(closes(7, 500), closes(8, 500))


def test_regimes_and_jumps_are_there() -> None:
    returns = np.diff(np.log(closes(7)))
    rolling = np.array([returns[i : i + 100].std() for i in range(0, len(returns) - 100, 100)])
    assert rolling.max() / rolling.min() > 3  # calm and wild stretches
    assert (np.abs(returns) > 0.02).sum() >= 5  # jumps
    candles = SyntheticFeed("BTC-PERP").history(1000)
    assert all(
        c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close) and c.volume >= 0 for c in candles
    )
