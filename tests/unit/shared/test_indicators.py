from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.indicators import INDICATOR_COLUMNS, IncrementalIndicators, compute, compute_reference
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return load_candle_csv(REAL_CANDLES).set_index("timestamp")


@pytest.fixture(scope="module")
def both(real: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return compute(real), compute_reference(real)


def assert_close(ours: np.ndarray, reference: np.ndarray, what: str) -> None:
    """Equal within 1e-9 relative (with an absolute floor of 1e-9 of the column's scale for values near 0)."""
    assert np.array_equal(np.isnan(ours), np.isnan(reference)), f"{what}: warm-up rows differ"
    mask = np.isfinite(reference)
    scale = float(np.nanmax(np.abs(reference[mask]))) if mask.any() else 1.0
    np.testing.assert_allclose(ours[mask], reference[mask], rtol=1e-9, atol=1e-9 * scale, err_msg=what)


@pytest.mark.parametrize("column", INDICATOR_COLUMNS)
def test_matches_ta_on_the_real_btc_month(both: tuple[pd.DataFrame, pd.DataFrame], column: str) -> None:
    ours, reference = both
    assert reference[column].notna().sum() > 44_000
    assert_close(ours[column].to_numpy(), reference[column].to_numpy(), column)


def test_warm_up_lengths_are_ta_defaults(both: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ours, _ = both
    first_valid = {
        c: int(ours[c].notna().to_numpy().argmax())
        for c in ("rsi", "atr", "adx", "plus_di", "macd_signal", "ema_200")
    }
    assert first_valid == {"rsi": 13, "atr": 13, "adx": 27, "plus_di": 15, "macd_signal": 33, "ema_200": 199}


def test_incremental_equals_batch_candle_by_candle(real: pd.DataFrame) -> None:
    window = real.iloc[:3000]
    batch = compute(window)
    state = IncrementalIndicators()
    rows = window[["open", "high", "low", "close", "volume"]].to_numpy()
    latest: list[dict[str, float]] = [state.update(*map(float, row)) for row in rows]
    for column in INDICATOR_COLUMNS:
        incremental = np.array([values[column] for values in latest])
        assert_close(incremental, batch[column].to_numpy(), f"incremental {column}")


def test_short_input_gives_nan_not_an_error(real: pd.DataFrame) -> None:
    for rows in (1, 5, 14, 27):
        result = compute(real.iloc[:rows])
        assert len(result) == rows and result["ema_200"].isna().all()
        assert result["adx"].isna().all()


ohlcv = st.lists(
    st.tuples(
        st.floats(1, 1e5), st.floats(0, 0.05), st.floats(0, 0.05), st.floats(-0.05, 0.05), st.floats(0, 1e4)
    ),
    min_size=1,
    max_size=80,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=60)
@given(ohlcv)
def test_any_valid_candles_give_bounded_values(rows: list[tuple[float, float, float, float, float]]) -> None:
    frame = pd.DataFrame(
        [
            {
                "open": o,
                "close": o * (1 + r),
                "high": max(o, o * (1 + r)) * (1 + up),
                "low": min(o, o * (1 + r)) * (1 - dn),
                "volume": v,
            }
            for o, up, dn, r, v in rows
        ],
        index=pd.date_range("2022-01-01", periods=len(rows), freq="1min", tz="UTC"),
    )
    result = compute(frame)
    for column in ("rsi", "adx", "plus_di", "minus_di"):
        values = result[column].dropna()
        assert ((values >= 0) & (values <= 100 + 1e-9)).all(), column
    stoch = result["stoch_k"][np.isfinite(result["stoch_k"])]
    assert ((stoch >= -1e-9) & (stoch <= 100 + 1e-9)).all()
    assert (result["atr"].dropna() >= 0).all()
    assert (result["bb_upper"].dropna() >= result["bb_lower"].dropna() - 1e-9).all()
    state = IncrementalIndicators()
    last = {}
    for row in frame[["open", "high", "low", "close", "volume"]].to_numpy():
        last = state.update(*map(float, row))
    for column in INDICATOR_COLUMNS:
        expected = float(result[column].iloc[-1])
        if math.isnan(expected):
            assert math.isnan(last[column]), column
        elif math.isfinite(expected):
            assert last[column] == pytest.approx(expected, rel=1e-7, abs=1e-6), column
