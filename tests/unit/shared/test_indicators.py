"""shared.indicators: parity with ``ta`` on the real BTC month, incremental == batch, short and degenerate
inputs, and properties on random valid candles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ta
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.indicators import INDICATOR_COLUMNS, IncrementalIndicators, compute, compute_reference

REAL_CANDLES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"
OHLCV = ["open", "high", "low", "close", "volume"]
# 0-based row of the first value of each column with ta's default windows.
FIRST_VALID = {
    "rsi": 13, "macd": 25, "macd_signal": 33, "macd_hist": 33,
    "bb_upper": 19, "bb_mid": 19, "bb_lower": 19, "bb_pband": 19, "bb_width": 19,
    "atr": 13, "adx": 27, "plus_di": 15, "minus_di": 15, "stoch_k": 13, "stoch_d": 15, "vwap": 13, "obv": 0,
    "ema_20": 19, "ema_50": 49, "ema_200": 199, "sma_20": 19, "sma_50": 49, "rel_volume": 19,
}  # fmt: skip
# Computed from pandas' rolling std, whose rounding accumulates along the series (see the module docstring).
BOLLINGER_STD = ("bb_upper", "bb_lower", "bb_pband", "bb_width")


def _load_candles(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame.index = pd.DatetimeIndex(
        pd.to_datetime(frame.pop("timestamp"), format="%Y-%m-%d %H:%M:%S.%f", utc=True)
    )
    return frame[OHLCV].astype(float).sort_index()


def _frame(rows: list[tuple[float, float, float, float, float]]) -> pd.DataFrame:
    index = pd.date_range("2022-01-01", periods=len(rows), freq="1min", tz="UTC")
    return pd.DataFrame(rows, columns=OHLCV, index=index, dtype=float)


def _fold(candles: pd.DataFrame) -> list[dict[str, float]]:
    state = IncrementalIndicators()
    return [state.update(*map(float, row)) for row in candles[OHLCV].to_numpy()]


def assert_close(ours: np.ndarray, reference: np.ndarray, what: str, rtol: float = 1e-9) -> None:
    """NaN in the same rows, then equal within ``rtol`` relative (absolute floor: rtol x the column's scale)."""
    assert np.array_equal(np.isnan(ours), np.isnan(reference)), f"{what}: NaN rows differ"
    mask = ~np.isnan(reference)
    finite = np.isfinite(reference[mask])
    scale = float(np.max(np.abs(reference[mask][finite]))) if finite.any() else 1.0
    np.testing.assert_allclose(ours[mask], reference[mask], rtol=rtol, atol=rtol * scale, err_msg=what)


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    assert REAL_CANDLES.exists(), f"real candles missing: {REAL_CANDLES} (see ../shared/data/README.md)"
    return _load_candles(REAL_CANDLES)


@pytest.fixture(scope="module")
def both(real: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return compute(real), compute_reference(real)


# --- parity with ta ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("column", INDICATOR_COLUMNS)
def test_matches_ta_on_the_real_btc_month(both: tuple[pd.DataFrame, pd.DataFrame], column: str) -> None:
    ours, reference = both
    assert len(ours) == 45_031 and reference[column].notna().sum() > 44_000
    assert_close(ours[column].to_numpy(), reference[column].to_numpy(), column)


def test_input_columns_are_kept_and_not_modified(
    real: pd.DataFrame, both: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    ours, _ = both
    assert list(ours.columns) == OHLCV + list(INDICATOR_COLUMNS)
    pd.testing.assert_frame_equal(ours[OHLCV], real)
    assert list(real.columns) == OHLCV


def test_warm_up_rows_are_ta_defaults(both: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ours, _ = both
    first_valid = {c: int(ours[c].notna().to_numpy().argmax()) for c in INDICATOR_COLUMNS}
    assert first_valid == FIRST_VALID
    assert all(ours[c].iloc[FIRST_VALID[c] :].notna().all() for c in INDICATOR_COLUMNS)


def test_the_rows_we_leave_nan_are_ta_placeholder_zeros(real: pd.DataFrame) -> None:
    """ta writes 0.0 before ATR, +DI/-DI and ADX start; those rows, and only those, are NaN in ours."""
    month = real.iloc[:500]
    high, low, close = month["high"], month["low"], month["close"]
    adx = ta.trend.ADXIndicator(high, low, close)
    raw = {
        "atr": ta.volatility.AverageTrueRange(high, low, close).average_true_range(),
        "adx": adx.adx(), "plus_di": adx.adx_pos(), "minus_di": adx.adx_neg(),
    }  # fmt: skip
    ours = compute(month)
    for column, series in raw.items():
        start = FIRST_VALID[column]
        assert (series.iloc[:start] == 0.0).all() and series.iloc[start] != 0.0, column
        assert ours[column].iloc[:start].isna().all(), column
        assert_close(ours[column].to_numpy()[start:], series.to_numpy()[start:], column)


# --- incremental == batch ----------------------------------------------------------------------------------
def test_incremental_equals_batch_candle_by_candle(real: pd.DataFrame) -> None:
    window = real.iloc[:5000]
    batch, latest = compute(window), _fold(window)
    for column in INDICATOR_COLUMNS:
        incremental = np.array([values[column] for values in latest])
        assert_close(incremental, batch[column].to_numpy(), f"incremental {column}")


def test_incremental_stays_equal_over_the_whole_month(
    real: pd.DataFrame, both: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """No drift over 45k folds. Bollinger %B/width are held to 1e-7: pandas' rolling std (ta's, and so
    ``compute``'s) drifts by ~6e-8 relative over this month, while the incremental windows are exact."""
    batch, _ = both
    latest = _fold(real)
    for column in INDICATOR_COLUMNS:
        incremental = np.array([values[column] for values in latest])
        rtol = 1e-7 if column in ("bb_pband", "bb_width") else 1e-9
        assert_close(incremental, batch[column].to_numpy(), f"incremental {column}", rtol=rtol)


def test_update_row_takes_a_mapping_or_a_frame_row(real: pd.DataFrame) -> None:
    rows = real.iloc[:300]
    by_row, by_value = IncrementalIndicators(), IncrementalIndicators()
    for (_, row), values in zip(rows.iterrows(), rows.to_dict("records"), strict=True):
        from_row, from_dict = by_row.update_row(row), by_value.update_row(values)
    assert from_row == from_dict and by_row.count == 300
    assert set(from_row) == set(INDICATOR_COLUMNS)
    assert from_row["ema_200"] == pytest.approx(float(compute(rows)["ema_200"].iloc[-1]), rel=1e-12)


# --- short and degenerate inputs ---------------------------------------------------------------------------
@pytest.mark.parametrize("rows", [0, 1, 2, 13, 14, 15, 16, 19, 27, 28, 34, 199])
def test_short_input_gives_nan_not_an_error(real: pd.DataFrame, rows: int) -> None:
    candles = real.iloc[:rows]
    ours, reference = compute(candles), compute_reference(candles)
    assert len(ours) == rows
    latest = _fold(candles)
    for column in INDICATOR_COLUMNS:
        values = ours[column].to_numpy()
        assert (
            np.isnan(values[: FIRST_VALID[column]]).all()
            and not np.isnan(values[FIRST_VALID[column] :]).any()
        )
        assert_close(values, reference[column].to_numpy(), column)
        if rows:
            assert_close(np.array([latest[-1][column]]), values[-1:], f"incremental {column}")


FLAT = 64_719.30396791343  # a price whose sum of 20 (or 50) divided back is not itself: means must be exact
NEXT_UP = math.nextafter(FLAT, math.inf)


@pytest.mark.parametrize(
    "last",
    [
        pytest.param((FLAT, FLAT + 10, FLAT - 2, FLAT + 8, 3.0), id="then-a-move"),
        pytest.param((FLAT, NEXT_UP, FLAT, NEXT_UP, 0.0), id="then-one-ulp"),  # pandas' std rounds to 0
    ],
)
def test_flat_market_without_trades_matches_ta(last: tuple[float, float, float, float, float]) -> None:
    """A quiet symbol: identical candles with zero volume (once crashed the incremental state)."""
    candles = _frame([(FLAT, FLAT, FLAT, FLAT, 0.0)] * 60 + [last])
    ours, reference = compute(candles), compute_reference(candles)
    latest = _fold(candles)
    for column in INDICATOR_COLUMNS:
        assert_close(ours[column].to_numpy(), reference[column].to_numpy(), column)
        incremental = np.array([v[column] for v in latest])
        if (
            column in BOLLINGER_STD
        ):  # exact std of an almost flat window is not pandas' 0: compare the flat part
            incremental, expected = incremental[:-1], ours[column].to_numpy()[:-1]
        else:
            expected = ours[column].to_numpy()
        assert_close(incremental, expected, f"incremental {column}")
    flat = ours.iloc[59]
    assert flat["rsi"] == 100.0 and flat["bb_width"] == 0.0 and flat["atr"] == 0.0 and flat["adx"] == 0.0
    assert flat[["bb_pband", "stoch_k", "stoch_d", "vwap", "rel_volume"]].isna().all()
    assert flat["bb_mid"] == FLAT and flat["sma_50"] == FLAT and flat["obv"] == 0.0
    assert not np.isinf(ours[list(INDICATOR_COLUMNS)].to_numpy()).any()
    assert not any(math.isinf(v) for v in latest[-1].values())


# --- properties on random valid candles ----------------------------------------------------------------------
# Each step is a new candle (return, upper wick, lower wick, volume) or an int k: the market stood still for
# k candles (flat at the last close, no volume), so flat and zero-volume windows are generated often.
# Volumes are 0 or within 4 decades: pandas' rolling sums (and so ta's VWAP) lose a 1e-300 volume once a
# volume of 1 has passed through the window, where the incremental sums are exact.
Step = tuple[float, float, float, float] | int
steps = st.lists(
    st.one_of(
        st.integers(1, 25),
        st.tuples(
            st.floats(-0.05, 0.05),
            st.floats(0, 0.05),
            st.floats(0, 0.05),
            st.one_of(st.just(0.0), st.floats(1, 1e4)),
        ),
    ),
    min_size=1,
    max_size=60,
)


def _candles_from_steps(start: float, walk: list[Step], limit: int = 150) -> pd.DataFrame:
    rows: list[tuple[float, float, float, float, float]] = []
    close = start
    for step in walk:
        if isinstance(step, int):
            rows.extend([(close, close, close, close, 0.0)] * step)
            continue
        change, up, down, volume = step
        open_, close = close, close * (1 + change)
        rows.append((open_, max(open_, close) * (1 + up), min(open_, close) * (1 - down), close, volume))
    return _frame(rows[:limit])


@settings(
    suppress_health_check=[HealthCheck.too_slow],
    deadline=None,
    max_examples=100,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(st.floats(1, 1e5), steps)
def test_any_valid_candles_give_bounded_values(start: float, walk: list[Step]) -> None:
    candles = _candles_from_steps(start, walk)
    assert (candles["high"] >= candles[["open", "close"]].max(axis=1)).all()
    assert (candles["low"] <= candles[["open", "close"]].min(axis=1)).all()
    result = compute(candles)
    assert not np.isinf(result[list(INDICATOR_COLUMNS)].to_numpy()).any()
    for column in ("rsi", "stoch_k", "stoch_d", "adx", "plus_di", "minus_di"):
        values = result[column].dropna()
        assert ((values >= -1e-9) & (values <= 100 + 1e-9)).all(), column
    assert (result["atr"].dropna() >= 0).all()
    assert (result["bb_upper"] >= result["bb_lower"]).where(result["bb_mid"].notna(), True).all()
    # The incremental state never raises and agrees (Bollinger std columns excepted: on near-flat windows
    # pandas' rolling std loses its digits, see the module docstring).
    latest = _fold(candles)
    for column in INDICATOR_COLUMNS:
        if column not in BOLLINGER_STD:
            incremental = np.array([values[column] for values in latest])
            assert_close(incremental, result[column].to_numpy(), f"incremental {column}", rtol=1e-8)
