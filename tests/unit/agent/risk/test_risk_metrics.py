"""Risk metrics: hand-computed examples, SciPy cross-checks on the real BTC-PERP month, properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy.stats import mstats

from agent.risk.metrics import (
    CorrelatedExposure,
    ExposureGroup,
    LiquidationDistance,
    correlated_exposure,
    drawdown,
    funding_cost_per_day,
    historical_es,
    historical_var,
    liquidation_distance,
    parametric_es,
    parametric_var,
    portfolio_es,
    portfolio_var,
    projected_max_drawdown,
    scale_to_horizon,
)
from tests.conftest import REAL_CANDLES

# --------------------------------------------------------------------------------------------------------------
# hand-computed VaR / ES

# 20 returns; sorted ascending (index: value):
#   0: -0.047   1: -0.031   2: -0.022   3: -0.015   4: -0.012   5: -0.008   6: -0.006   7: -0.004
#   8:  0.000   9:  0.002  10:  0.003  11:  0.005  12:  0.006  13:  0.008  14:  0.009  15:  0.011
#  16:  0.012  17:  0.014  18:  0.017  19:  0.021
HAND = [
    0.012, -0.008, 0.005, -0.031, 0.017, 0.002, -0.012, 0.009, -0.004, 0.021,
    -0.047, 0.006, 0.000, -0.015, 0.011, 0.003, -0.022, 0.014, -0.006, 0.008,
]  # fmt: skip


def test_hand_computed_historical_var_and_es_at_95() -> None:
    # linear quantile (type 7): position h = (n - 1) * p = 19 * 0.05 = 0.95
    #   q = x[0] + 0.95 * (x[1] - x[0]) = -0.047 + 0.95 * (-0.031 + 0.047) = -0.047 + 0.95 * 0.016
    #     = -0.047 + 0.0152 = -0.0318                                           -> VaR 95 = 0.0318
    # returns at or below -0.0318: only -0.047                                -> ES 95 = 0.047
    assert historical_var(HAND, 0.95) == pytest.approx(0.0318, abs=1e-12)
    assert historical_es(HAND, 0.95) == pytest.approx(0.047, abs=1e-12)


def test_hand_computed_historical_var_and_es_at_90_and_80() -> None:
    # 90 %: h = 19 * 0.10 = 1.9 -> q = x[1] + 0.9 * (x[2] - x[1]) = -0.031 + 0.9 * 0.009 = -0.0229
    #   tail {-0.047, -0.031}: ES = (0.047 + 0.031) / 2 = 0.039
    assert historical_var(HAND, 0.90) == pytest.approx(0.0229, abs=1e-12)
    assert historical_es(HAND, 0.90) == pytest.approx(0.039, abs=1e-12)
    # 80 %: h = 19 * 0.20 = 3.8 -> q = x[3] + 0.8 * (x[4] - x[3]) = -0.015 + 0.8 * 0.003 = -0.0126
    #   tail {-0.047, -0.031, -0.022, -0.015}: ES = 0.115 / 4 = 0.02875
    assert historical_var(HAND, 0.80) == pytest.approx(0.0126, abs=1e-12)
    assert historical_es(HAND, 0.80) == pytest.approx(0.02875, abs=1e-12)


def test_hand_computed_parametric_var_and_es_at_95() -> None:
    # r = [-0.02, 0, 0.02, 0.04]: mu = 0.01; deviations -0.03, -0.01, 0.01, 0.03
    #   sample variance = (0.0009 + 0.0001 + 0.0001 + 0.0009) / 3 = 0.002 / 3 -> sigma = 0.0258198890
    #   z = Phi^-1(0.05) = -1.6448536270, phi(z) = 0.1031356404, phi(z) / 0.05 = 2.0627128075
    #   VaR = -(0.01 - 0.0258198890 * 1.6448536270) = -(0.01 - 0.0424699380) = 0.0324699380
    #   ES  = -(0.01 - 0.0258198890 * 2.0627128075) = -(0.01 - 0.0532590157) = 0.0432590157
    returns = [-0.02, 0.0, 0.02, 0.04]
    assert parametric_var(returns, 0.95) == pytest.approx(0.0324699380, abs=1e-9)
    assert parametric_es(returns, 0.95) == pytest.approx(0.0432590157, abs=1e-9)


def test_es_includes_returns_equal_to_the_quantile() -> None:
    # sorted: -0.05, -0.03, -0.03, -0.03, then 16 x 0.01; 90 %: h = 19 * 0.1 = 1.9 between x[1] = x[2] = -0.03,
    # so q = -0.03 exactly; at or below it: -0.05 and the three -0.03 -> ES = 0.14 / 4 = 0.035
    returns = [0.01] * 16 + [-0.03, -0.05, -0.03, -0.03]
    assert historical_var(returns, 0.90) == pytest.approx(0.03, abs=1e-15)
    assert historical_es(returns, 0.90) == pytest.approx(0.035, abs=1e-15)


def test_var_of_all_gains_is_negative_not_floored() -> None:
    # every return is a gain: the 5 % quantile of [0.01, 0.02, 0.03] is 0.01 + 0.1 * 0.01 = 0.011
    assert historical_var([0.01, 0.02, 0.03], 0.95) == pytest.approx(-0.011)
    assert historical_es([0.01, 0.02, 0.03], 0.95) == pytest.approx(-0.01)


def test_non_finite_returns_are_ignored() -> None:
    noisy = [math.nan, *HAND, math.inf, math.nan]
    assert historical_var(noisy, 0.95) == historical_var(HAND, 0.95)
    assert historical_es(pd.Series(noisy), 0.95) == historical_es(HAND, 0.95)
    assert parametric_var(np.array(noisy), 0.99) == parametric_var(HAND, 0.99)
    assert parametric_es(noisy, 0.99) == parametric_es(HAND, 0.99)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5, math.nan, math.inf, True])
@pytest.mark.parametrize("fn", [historical_var, historical_es, parametric_var, parametric_es])
def test_level_is_validated(fn: object, level: float) -> None:
    with pytest.raises(ValueError, match="level"):
        fn(HAND, level)  # type: ignore[operator]


@pytest.mark.parametrize("returns", [[], [0.01], [math.nan, 0.02, math.inf]])
@pytest.mark.parametrize("fn", [historical_var, historical_es, parametric_var, parametric_es])
def test_too_few_finite_returns_are_refused(fn: object, returns: list[float]) -> None:
    with pytest.raises(ValueError, match="at least 2 finite"):
        fn(returns, 0.95)  # type: ignore[operator]


def test_returns_must_be_one_dimensional() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        historical_var(np.zeros((3, 2)), 0.95)


def test_scale_to_horizon_is_square_root_of_time() -> None:
    assert scale_to_horizon(0.01, 4) == pytest.approx(0.02)
    assert scale_to_horizon(0.002, 1440) == pytest.approx(0.002 * 37.947331922, rel=1e-9)
    assert scale_to_horizon(-0.01, 9) == pytest.approx(-0.03)
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="periods"):
            scale_to_horizon(0.01, bad)


# --------------------------------------------------------------------------------------------------------------
# the real BTC-PERP month against SciPy


@pytest.fixture(scope="module")
def btc_returns() -> dict[str, pd.Series]:
    assert REAL_CANDLES.exists(), f"real candles missing: {REAL_CANDLES}"
    candles = pd.read_csv(REAL_CANDLES, parse_dates=["timestamp"], index_col="timestamp")
    close = candles["close"].astype(float)
    minute = close.pct_change(fill_method=None).dropna()
    hourly = close.resample("1h").last().pct_change(fill_method=None).dropna()
    assert len(minute) > 40_000 and len(hourly) > 700
    return {"1m": minute, "1h": hourly}


FRAMES = ["1m", "1h"]
LEVELS = [0.95, 0.99]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("frame", FRAMES)
def test_historical_var_matches_scipy_mquantiles(
    btc_returns: dict[str, pd.Series], frame: str, level: float
) -> None:
    r = btc_returns[frame].to_numpy()
    expected = -float(mstats.mquantiles(r, prob=[1 - level], alphap=1, betap=1)[0])
    assert historical_var(btc_returns[frame], level) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert historical_var(r, level) == pytest.approx(-np.percentile(r, 100 * (1 - level)), rel=1e-12)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("frame", FRAMES)
def test_historical_es_matches_sort_and_average(
    btc_returns: dict[str, pd.Series], frame: str, level: float
) -> None:
    ordered = sorted(btc_returns[frame].tolist())
    cutoff = float(mstats.mquantiles(ordered, prob=[1 - level], alphap=1, betap=1)[0])
    count = 0
    while count < len(ordered) and ordered[count] <= cutoff:
        count += 1
    expected = -math.fsum(ordered[:count]) / count
    assert count >= 1
    assert historical_es(btc_returns[frame], level) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("frame", FRAMES)
def test_parametric_var_matches_scipy_norm_ppf(
    btc_returns: dict[str, pd.Series], frame: str, level: float
) -> None:
    r = btc_returns[frame].to_numpy()
    mu, sigma = float(np.mean(r)), float(np.std(r, ddof=1))
    expected = -float(stats.norm.ppf(1 - level, loc=mu, scale=sigma))
    assert parametric_var(r, level) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("frame", FRAMES)
def test_parametric_es_matches_numerical_integration_of_the_tail(
    btc_returns: dict[str, pd.Series], frame: str, level: float
) -> None:
    r = btc_returns[frame].to_numpy()
    mu, sigma = float(np.mean(r)), float(np.std(r, ddof=1))
    cutoff = float(stats.norm.ppf(1 - level, loc=mu, scale=sigma))
    # E[X | X <= cutoff] = (1 / (1 - level)) * integral of x * pdf(x) over (-inf, cutoff]; the density
    # below mu - 40 sigma is ~1e-349, i.e. nothing in float64, so that is the lower bound.
    tail, _ = integrate.quad(
        lambda x: x * stats.norm.pdf(x, loc=mu, scale=sigma), mu - 40 * sigma, cutoff, epsabs=0, epsrel=1e-12
    )
    expected = -tail / (1 - level)
    assert parametric_es(r, level) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("frame", FRAMES)
def test_orderings_on_the_real_month(btc_returns: dict[str, pd.Series], frame: str) -> None:
    r = btc_returns[frame]
    for var, es in ((historical_var, historical_es), (parametric_var, parametric_es)):
        assert es(r, 0.95) >= var(r, 0.95) > 0
        assert es(r, 0.99) >= var(r, 0.99) > 0
        assert var(r, 0.99) >= var(r, 0.95)
        assert es(r, 0.99) >= es(r, 0.95)


def test_real_month_figures_are_plausible(btc_returns: dict[str, pd.Series]) -> None:
    # January 2022 BTC: a 1-minute 95 % VaR of ~0.14 %, an hourly one of ~1.2 %
    assert historical_var(btc_returns["1m"], 0.95) == pytest.approx(0.001358, abs=5e-6)
    assert historical_var(btc_returns["1h"], 0.95) == pytest.approx(0.012324, abs=5e-6)
    # fat tails: at 99 % the empirical ES is beyond the Gaussian one
    for frame in FRAMES:
        assert historical_es(btc_returns[frame], 0.99) > parametric_es(btc_returns[frame], 0.99)


# --------------------------------------------------------------------------------------------------------------
# properties of VaR / ES

finite_returns = st.lists(
    st.floats(min_value=-0.99, max_value=5.0, allow_nan=False, allow_infinity=False), min_size=2, max_size=200
)
levels = st.floats(min_value=0.01, max_value=0.999)


@given(finite_returns, levels)
def test_historical_es_is_at_least_var(returns: list[float], level: float) -> None:
    assert historical_es(returns, level) >= historical_var(returns, level) - 1e-12


@given(finite_returns, levels, levels)
def test_var_and_es_are_monotone_in_level(returns: list[float], a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    assert historical_var(returns, high) >= historical_var(returns, low) - 1e-12
    assert historical_es(returns, high) >= historical_es(returns, low) - 1e-12
    assert parametric_var(returns, high) >= parametric_var(returns, low) - 1e-12
    assert parametric_es(returns, high) >= parametric_es(returns, low) - 1e-12


@given(finite_returns, levels)
def test_parametric_es_is_at_least_var(returns: list[float], level: float) -> None:
    assert parametric_es(returns, level) >= parametric_var(returns, level) - 1e-12


# --------------------------------------------------------------------------------------------------------------
# drawdowns


def test_drawdown_by_hand() -> None:
    # peak 120; trough 90 -> 90 / 120 - 1 = -0.25; last 110 -> 110 / 120 - 1 = -0.083333...
    current, worst = drawdown([100.0, 120.0, 90.0, 110.0])
    assert current == pytest.approx(-1 / 12)
    assert worst == pytest.approx(-0.25)
    assert drawdown(pd.Series([100.0, 101.0, 102.0])) == (0.0, 0.0)
    # a later, deeper fall from a later peak: 150 -> 75 = -0.5, then recovery to a new high
    assert drawdown(np.array([100.0, 80.0, 150.0, 75.0, 160.0])) == (0.0, pytest.approx(-0.5))
    # non-finite samples are ignored
    assert drawdown([100.0, math.nan, 50.0]) == (pytest.approx(-0.5), pytest.approx(-0.5))


def test_drawdown_validates_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        drawdown([])
    with pytest.raises(ValueError, match="non-negative"):
        drawdown([100.0, -5.0])


@given(st.lists(st.floats(min_value=0.0, max_value=1e12, allow_nan=False), min_size=1, max_size=200))
def test_drawdown_is_between_minus_one_and_zero(equity: list[float]) -> None:
    current, worst = drawdown(equity)
    assert -1.0 <= worst <= current <= 0.0
    peak = max(equity)
    if peak > 0 and equity[-1] == peak:
        assert current == 0.0


def test_projected_max_drawdown_of_a_constant_loss_is_exact() -> None:
    # every draw is -1 %: each path falls 0.99 ** 10 - 1 from its starting equity of 1.0
    assert projected_max_drawdown([-0.01, -0.01], horizon=10, paths=50) == pytest.approx(0.99**10 - 1)
    assert projected_max_drawdown([0.01, 0.02, 0.0], horizon=30) == 0.0


def test_projected_max_drawdown_takes_the_bad_tail() -> None:
    # horizon 1: each path's drawdown is -0.1 (a loss draw) or 0.0 (a gain), about half each
    returns = [-0.1, 0.1]
    assert projected_max_drawdown(returns, horizon=1, quantile=0.95) == pytest.approx(-0.1)
    assert projected_max_drawdown(returns, horizon=1, quantile=0.2) == 0.0


def test_projected_max_drawdown_matches_a_path_by_path_loop() -> None:
    returns = np.array([0.03, -0.02, 0.01, -0.05, 0.02, 0.0, -0.01])
    horizon, paths, seed = 12, 300, 11
    draws = np.random.default_rng(seed).integers(0, returns.size, size=(paths, horizon))
    worst = []
    for row in draws:
        equity = peak = 1.0
        deepest = 0.0
        for index in row:
            equity *= 1.0 + returns[index]
            peak = max(peak, equity)
            deepest = min(deepest, equity / peak - 1.0)
        worst.append(deepest)
    expected = float(np.quantile(worst, 0.05))
    assert projected_max_drawdown(returns, horizon, paths=paths, seed=seed) == pytest.approx(
        expected, rel=1e-12
    )


def test_projected_max_drawdown_on_the_real_month(btc_returns: dict[str, pd.Series]) -> None:
    r = btc_returns["1h"]
    day = projected_max_drawdown(r, horizon=24)
    week = projected_max_drawdown(r, horizon=24 * 7)
    assert week < day < 0
    assert projected_max_drawdown(r, horizon=24, seed=8) != day
    assert projected_max_drawdown(r, horizon=24, quantile=0.99) < day


def test_projected_max_drawdown_validates_input() -> None:
    with pytest.raises(ValueError, match="horizon"):
        projected_max_drawdown(HAND, horizon=0)
    with pytest.raises(ValueError, match="paths"):
        projected_max_drawdown(HAND, horizon=5, paths=0)
    with pytest.raises(ValueError, match="quantile"):
        projected_max_drawdown(HAND, horizon=5, quantile=1.0)
    with pytest.raises(ValueError, match=">= -1"):
        projected_max_drawdown([-1.5, 0.1], horizon=5)


@settings(max_examples=50)
@given(finite_returns, st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_projected_max_drawdown_is_deterministic_and_non_positive(
    returns: list[float], horizon: int, seed: int
) -> None:
    first = projected_max_drawdown(returns, horizon, paths=200, seed=seed)
    assert first == projected_max_drawdown(returns, horizon, paths=200, seed=seed)
    assert -1.0 <= first <= 0.0


# --------------------------------------------------------------------------------------------------------------
# liquidation distance and funding


def test_liquidation_distance_of_a_long() -> None:
    # long 0.5 BTC, mark 40,000, liquidation 36,000: (40,000 - 36,000) / 40,000 = 0.10; 4,000 / 800 = 5 ATRs
    distance = liquidation_distance(0.5, 40_000.0, 36_000.0, 800.0)
    assert isinstance(distance, LiquidationDistance)
    assert distance.pct == pytest.approx(0.10) and distance.atrs == pytest.approx(5.0)


def test_liquidation_distance_of_a_short() -> None:
    # short 0.5 BTC, mark 40,000, liquidation 42,000: (42,000 - 40,000) / 40,000 = 0.05; 2,000 / 500 = 4 ATRs
    distance = liquidation_distance(-0.5, 40_000.0, 42_000.0, 500.0)
    assert distance.pct == pytest.approx(0.05) and distance.atrs == pytest.approx(4.0)


def test_liquidation_distance_beyond_liquidation_is_negative() -> None:
    # long with the mark 35,000 already under its liquidation price 36,000: -1,000 / 35,000, -1,000 / 500
    distance = liquidation_distance(1.0, 35_000.0, 36_000.0, 500.0)
    assert distance.pct == pytest.approx(-1 / 35)
    assert distance.atrs == pytest.approx(-2.0)


def test_liquidation_distance_unknown_parts_are_none() -> None:
    assert liquidation_distance(0.0, 40_000.0, 36_000.0, 800.0) == LiquidationDistance(None, None)
    assert liquidation_distance(0.5, 40_000.0, None, 800.0) == LiquidationDistance(None, None)
    for atr in (None, 0.0, -5.0, math.nan):
        distance = liquidation_distance(0.5, 40_000.0, 36_000.0, atr)
        assert distance.pct == pytest.approx(0.10) and distance.atrs is None
    with pytest.raises(ValueError, match="mark"):
        liquidation_distance(0.5, 0.0, 36_000.0, 800.0)


def test_funding_sign_conventions() -> None:
    # 2 BTC at 50,000 = 100,000 notional; 0.01 % every 8 h = 10 USD a payment, 3 payments a day = 30 USD
    assert funding_cost_per_day(2.0, 50_000.0, 0.0001, 8.0) == pytest.approx(30.0)
    assert funding_cost_per_day(-2.0, 50_000.0, 0.0001, 8.0) == pytest.approx(-30.0)  # short receives
    assert funding_cost_per_day(2.0, 50_000.0, -0.0001, 8.0) == pytest.approx(-30.0)  # long receives
    assert funding_cost_per_day(-2.0, 50_000.0, -0.0001, 8.0) == pytest.approx(30.0)  # short pays
    assert funding_cost_per_day(2.0, 50_000.0, 0.0001, 1.0) == pytest.approx(240.0)  # hourly funding
    assert funding_cost_per_day(0.0, 50_000.0, 0.0001, 8.0) == 0.0
    with pytest.raises(ValueError, match="interval_hours"):
        funding_cost_per_day(2.0, 50_000.0, 0.0001, 0.0)


# --------------------------------------------------------------------------------------------------------------
# correlated exposure


def test_correlated_exposure_by_hand() -> None:
    correlation: dict[str, dict[str, float | None]] = {
        "BTC-PERP": {"BTC-PERP": 1.0, "ETH-PERP": 0.85, "SOL-PERP": 0.2},
        "ETH-PERP": {"BTC-PERP": 0.85, "ETH-PERP": 1.0, "SOL-PERP": None},
    }
    result = correlated_exposure({"BTC-PERP": 1000.0, "ETH-PERP": -400.0, "SOL-PERP": 500.0}, correlation)
    # BTC and ETH move together: net 1000 - 400 = 600, gross 1400; SOL alone: 500
    assert result == CorrelatedExposure(
        groups=(
            ExposureGroup(("BTC-PERP", "ETH-PERP"), 600.0, 1400.0),
            ExposureGroup(("SOL-PERP",), 500.0, 500.0),
        ),
        largest_net=600.0,
        by_symbol={"BTC-PERP": 600.0, "ETH-PERP": 600.0, "SOL-PERP": 500.0},
    )


def test_correlated_exposure_is_transitive_and_inclusive_at_the_threshold() -> None:
    # A~B and B~C link A and C even though A and C are only 0.3 correlated; 0.7 itself counts
    correlation = {"A": {"B": 0.9, "C": 0.3}, "C": {"B": 0.7}}
    result = correlated_exposure({"A": 100.0, "B": 200.0, "C": -50.0, "D": -300.0}, correlation)
    # groups are ordered by |net|: D (300) before A+B+C (250)
    assert [group.symbols for group in result.groups] == [("D",), ("A", "B", "C")]
    assert result.groups[1].net == 250.0 and result.groups[1].gross == 350.0
    assert result.largest_net == 300.0
    assert result.by_symbol == {"A": 250.0, "B": 250.0, "C": 250.0, "D": 300.0}
    # a stricter threshold separates them; NaN correlation means not correlated
    split = correlated_exposure({"A": 100.0, "B": 200.0}, {"A": {"B": math.nan}})
    assert len(split.groups) == 2 and split.largest_net == 200.0
    assert len(correlated_exposure({"A": 100.0, "B": 200.0}, correlation, threshold=0.95).groups) == 2


def test_correlated_exposure_of_a_symbol_not_yet_held() -> None:
    # a new ETH order adds to the BTC exposure it is correlated with
    result = correlated_exposure({"BTC": 1000.0, "ETH": 0.0}, {"BTC": {"ETH": 0.8}})
    assert result.by_symbol["ETH"] == 1000.0
    empty = correlated_exposure({}, {})
    assert empty.groups == () and empty.largest_net == 0.0 and dict(empty.by_symbol) == {}


SYMBOLS = ["A", "B", "C", "D", "E", "F"]


@st.composite
def exposure_cases(draw: st.DrawFn) -> tuple[dict[str, float], dict[str, dict[str, float | None]]]:
    held = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=len(SYMBOLS)))
    notional = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False)
    exposures = {symbol: draw(notional) for symbol in held}
    rho = st.one_of(st.none(), st.floats(min_value=-1.0, max_value=1.0))
    correlation = {a: {b: draw(rho) for b in SYMBOLS if b != a} for a in SYMBOLS}
    return exposures, correlation


@given(exposure_cases(), st.floats(min_value=-1.0, max_value=1.0))
def test_correlated_exposure_properties(
    case: tuple[dict[str, float], dict[str, dict[str, float | None]]], threshold: float
) -> None:
    exposures, correlation = case
    result = correlated_exposure(exposures, correlation, threshold)
    grouped = [symbol for group in result.groups for symbol in group.symbols]
    assert sorted(grouped) == sorted(exposures)  # every symbol in exactly one group
    assert math.fsum(g.gross for g in result.groups) == pytest.approx(
        math.fsum(abs(v) for v in exposures.values()), rel=1e-12, abs=1e-6
    )
    for group in result.groups:
        assert abs(group.net) <= group.gross + 1e-6
        for symbol in group.symbols:
            assert result.by_symbol[symbol] == abs(group.net)

    def linked(a: str, b: str) -> bool:
        return any(rho is not None and rho >= threshold for rho in (correlation[a][b], correlation[b][a]))

    group_of = {symbol: i for i, group in enumerate(result.groups) for symbol in group.symbols}
    for a in exposures:  # symbols in different groups are never linked
        for b in exposures:
            if group_of[a] != group_of[b]:
                assert not linked(a, b)
    for group in result.groups:  # and each group is connected through links
        reached, frontier = {group.symbols[0]}, [group.symbols[0]]
        while frontier:
            a = frontier.pop()
            for b in group.symbols:
                if b not in reached and linked(a, b):
                    reached.add(b)
                    frontier.append(b)
        assert reached == set(group.symbols)
    assert result.largest_net == max((abs(g.net) for g in result.groups), default=0.0)


# --------------------------------------------------------------------------------------------------------------
# portfolio VaR / ES


def _two_symbol_returns(seed: int = 3, rows: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    common = rng.normal(0.0, 0.01, rows)
    return pd.DataFrame(
        {"BTC": common + rng.normal(0.0, 0.004, rows), "ETH": common * 1.3 + rng.normal(0, 0.006, rows)}
    )


@pytest.mark.parametrize("method", ["historical", "parametric"])
def test_opposite_positions_in_perfectly_correlated_symbols_have_no_var(method: str) -> None:
    r = np.random.default_rng(5).normal(0.0, 0.02, 300)
    frame = pd.DataFrame({"BTC": r, "XBT": r})
    hedged = {"BTC": 10_000.0, "XBT": -10_000.0}
    assert portfolio_var(hedged, frame, 0.99, method) == pytest.approx(0.0, abs=1e-9)  # type: ignore[arg-type]
    assert portfolio_es(hedged, frame, 0.99, method) == pytest.approx(0.0, abs=1e-9)  # type: ignore[arg-type]
    # without the hedge the same position does carry risk
    assert portfolio_var({"BTC": 10_000.0}, frame, 0.99, method) > 100.0  # type: ignore[arg-type]


def test_single_position_var_is_notional_times_return_var() -> None:
    frame = _two_symbol_returns()
    for level in LEVELS:
        assert portfolio_var({"BTC": 5_000.0}, frame, level, "historical") == pytest.approx(
            5_000.0 * historical_var(frame["BTC"], level), rel=1e-12
        )
        assert portfolio_es({"BTC": 5_000.0}, frame, level, "historical") == pytest.approx(
            5_000.0 * historical_es(frame["BTC"], level), rel=1e-12
        )
        # a short loses on the upside tail
        assert portfolio_var({"BTC": -5_000.0}, frame, level, "historical") == pytest.approx(
            5_000.0 * historical_var(-frame["BTC"], level), rel=1e-12
        )


def test_parametric_portfolio_var_matches_the_covariance_formula() -> None:
    frame = _two_symbol_returns()
    weights = np.array([8_000.0, -3_000.0])
    mu = float(weights @ frame.mean().to_numpy())
    sigma = math.sqrt(float(weights @ frame.cov().to_numpy() @ weights))  # cov uses ddof=1
    z = stats.norm.ppf(0.01)
    notionals = {"BTC": 8_000.0, "ETH": -3_000.0}
    assert portfolio_var(notionals, frame, 0.99, "parametric") == pytest.approx(-(mu + sigma * z), rel=1e-10)
    expected_es = -(mu - sigma * stats.norm.pdf(z) / 0.01)
    assert portfolio_es(notionals, frame, 0.99, "parametric") == pytest.approx(expected_es, rel=1e-10)


def test_portfolio_var_uses_only_the_common_rows() -> None:
    frame = _two_symbol_returns()
    gappy = frame.copy()
    gappy.loc[gappy.index[:50], "ETH"] = np.nan
    notionals = {"BTC": 1_000.0, "ETH": 1_000.0}
    common = frame.iloc[50:]
    assert portfolio_var(notionals, gappy, 0.95, "historical") == pytest.approx(
        portfolio_var(notionals, common, 0.95, "historical"), rel=1e-12
    )
    # a column for a symbol not held is not needed and its gaps do not matter
    assert portfolio_var({"BTC": 1_000.0}, gappy, 0.95, "historical") == pytest.approx(
        1_000.0 * historical_var(frame["BTC"], 0.95), rel=1e-12
    )


def test_portfolio_var_edge_cases() -> None:
    frame = _two_symbol_returns()
    assert portfolio_var({}, frame, 0.95, "historical") == 0.0
    assert portfolio_es({"BTC": 0.0}, frame, 0.95, "parametric") == 0.0
    with pytest.raises(ValueError, match="SOL"):
        portfolio_var({"SOL": 1_000.0}, frame, 0.95, "historical")
    with pytest.raises(ValueError, match="method"):
        portfolio_var({"BTC": 1_000.0}, frame, 0.95, "monte-carlo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        portfolio_es({"BTC": 1_000.0}, frame, 95, "historical")
