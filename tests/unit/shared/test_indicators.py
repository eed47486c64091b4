from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.indicators import INDICATOR_COLUMNS, compute, compute_reference
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return load_candle_csv(REAL_CANDLES).set_index("timestamp")


@pytest.fixture(scope="module")
def both(real: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return compute(real), compute_reference(real)


@pytest.mark.parametrize("column", INDICATOR_COLUMNS)
def test_matches_ta_on_the_real_btc_month(both: tuple[pd.DataFrame, pd.DataFrame], column: str) -> None:
    ours, reference = both
    assert np.array_equal(ours[column].isna().to_numpy(), reference[column].isna().to_numpy())
    mask = reference[column].notna()
    assert mask.sum() > 40_000
    np.testing.assert_allclose(ours.loc[mask, column], reference.loc[mask, column], rtol=1e-9, atol=1e-9)


def test_short_input_gives_nan_not_an_error(real: pd.DataFrame) -> None:
    result = compute(real.iloc[:10])
    assert result["rsi"].isna().all() and result["ema_200"].isna().all()


ohlcv = st.lists(
    st.tuples(
        st.floats(1, 1e5), st.floats(0, 0.05), st.floats(0, 0.05), st.floats(-0.05, 0.05), st.floats(0, 1e4)
    ),
    min_size=1,
    max_size=80,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(ohlcv)
def test_any_valid_candles_give_bounded_oscillators(
    rows: list[tuple[float, float, float, float, float]],
) -> None:
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
    values = result["rsi"].dropna()
    assert ((values >= 0) & (values <= 100)).all()
    assert (result["bb_upper"].dropna() >= result["bb_lower"].dropna() - 1e-9).all()
