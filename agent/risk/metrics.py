"""Portfolio risk metrics: VaR, expected shortfall, drawdowns, liquidation distance, funding, exposure.

Pure, deterministic functions (numpy, pandas, scipy); no I/O, no clock, no global random state.

Conventions
-----------
- Returns are simple per-period returns as fractions (0.01 = +1 %), e.g. ``close.pct_change()``.
  Non-finite entries (the NaN that ``pct_change`` leaves in the first row, gaps) are ignored; the VaR and ES
  functions need at least two finite returns, else ``ValueError``.
- VaR and ES are reported as POSITIVE loss fractions of equity: 0.02 means a 2 % loss. They are not floored:
  when even the tail of the distribution is a gain (all returns positive) the VaR is negative, reported as is.
  ``portfolio_var``/``portfolio_es`` apply the same convention to a P&L series in USD (positive = a USD loss).
- ``level`` is the confidence level, typically 0.95 or 0.99; it must satisfy ``0 < level < 1`` (else
  ``ValueError`` naming ``level``). The tail probability is ``1 - level``.
- Historical VaR is ``-np.quantile(returns, 1 - level, method="linear")``: NumPy's default quantile, Hyndman &
  Fan type 7 (position ``h = (n - 1) * p`` in the ascending sort, linear interpolation between the two
  neighbouring order statistics), the same as ``scipy.stats.mstats.mquantiles(alphap=1, betap=1)``.
  Historical ES is minus the mean of the returns at or below that quantile, so ``ES >= VaR``.
- Parametric (Gaussian) VaR/ES use the sample mean and the sample standard deviation (``ddof=1``):
  ``VaR = -(mu + sigma * z)`` and ``ES = -(mu - sigma * phi(z) / (1 - level))``, ``z = Phi^-1(1 - level)``.
- Drawdowns are NEGATIVE fractions (or 0.0): -0.25 means 25 % below the running peak.
- Exposures and position quantities are signed: long > 0, short < 0. Notionals are in USD.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

Method = Literal["historical", "parametric"]

__all__ = [
    "CorrelatedExposure",
    "ExposureGroup",
    "LiquidationDistance",
    "correlated_exposure",
    "drawdown",
    "funding_cost_per_day",
    "historical_es",
    "historical_var",
    "liquidation_distance",
    "parametric_es",
    "parametric_var",
    "portfolio_es",
    "portfolio_pnl",
    "portfolio_var",
    "projected_max_drawdown",
    "scale_to_horizon",
]


# ----------------------------------------------------------------------------------------------------
# result types


@dataclass(frozen=True)
class LiquidationDistance:
    """How far the mark price may move against a position before it is liquidated.

    ``pct``: the adverse move as a fraction of the mark (long: ``(mark - liq) / mark``; short:
    ``(liq - mark) / mark``); negative when the mark is already beyond the liquidation price.
    ``atrs``: the same adverse distance in ATRs (``(mark - liq) / atr`` for a long, ``(liq - mark) / atr``
    for a short, i.e. ``|mark - liq| / atr`` whenever the liquidation price lies on the adverse side).
    ``None`` when unknown: no liquidation price, a flat position, or (for ``atrs``) no positive ATR.
    """

    pct: float | None
    atrs: float | None


@dataclass(frozen=True)
class ExposureGroup:
    """Symbols whose positions move together; ``net`` is signed, ``gross`` the sum of absolute notionals."""

    symbols: tuple[str, ...]
    net: float
    gross: float


@dataclass(frozen=True)
class CorrelatedExposure:
    """Exposure grouped by correlation.

    ``groups``: ordered by ``|net|`` descending (ties by symbols); ``largest_net``: the largest ``|net|`` of
    any group (0.0 with no exposures); ``by_symbol``: each symbol's group ``|net|``, the exposure an order
    in that symbol adds to.
    """

    groups: tuple[ExposureGroup, ...]
    largest_net: float
    by_symbol: Mapping[str, float]


# ----------------------------------------------------------------------------------------------------
# validation helpers


def _check_probability(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return value


def _clean_returns(returns: npt.ArrayLike, minimum: int = 2) -> npt.NDArray[np.float64]:
    """The finite values of a one-dimensional return series, as float64."""
    array = np.asarray(returns, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {array.shape}")
    finite = array[np.isfinite(array)]
    if finite.size < minimum:
        raise ValueError(f"returns must hold at least {minimum} finite values, got {finite.size}")
    return finite


def _tail_quantile(values: npt.NDArray[np.float64], level: float) -> float:
    return float(np.quantile(values, 1.0 - level, method="linear"))


# ----------------------------------------------------------------------------------------------------
# value at risk and expected shortfall


def historical_var(returns: npt.ArrayLike, level: float) -> float:
    """Historical VaR: ``-np.quantile(returns, 1 - level, method="linear")`` (positive = a loss)."""
    level = _check_probability(level, "level")
    return -_tail_quantile(_clean_returns(returns), level)


def historical_es(returns: npt.ArrayLike, level: float) -> float:
    """Historical ES: minus the mean of the returns at or below the ``1 - level`` quantile."""
    level = _check_probability(level, "level")
    values = _clean_returns(returns)
    cutoff = _tail_quantile(values, level)
    tail = values[values <= cutoff]
    if tail.size == 0:  # only reachable through rounding in the interpolation: the minimum is the tail
        tail = values[values == values.min()]
    return -float(np.mean(tail))


def _moments(values: npt.NDArray[np.float64]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1))


def parametric_var(returns: npt.ArrayLike, level: float) -> float:
    """Gaussian VaR: ``-(mu + sigma * z)``, ``z = Phi^-1(1 - level)``, sample mean and std (ddof=1)."""
    level = _check_probability(level, "level")
    mu, sigma = _moments(_clean_returns(returns))
    z = float(stats.norm.ppf(1.0 - level))
    return -(mu + sigma * z)


def parametric_es(returns: npt.ArrayLike, level: float) -> float:
    """Gaussian ES: ``-(mu - sigma * phi(z) / (1 - level))``, ``z = Phi^-1(1 - level)``."""
    level = _check_probability(level, "level")
    mu, sigma = _moments(_clean_returns(returns))
    z = float(stats.norm.ppf(1.0 - level))
    return -(mu - sigma * float(stats.norm.pdf(z)) / (1.0 - level))


def scale_to_horizon(var: float, periods: float) -> float:
    """``var * sqrt(periods)``: the square-root-of-time rule.

    An approximation: exact only for i.i.d. zero-mean Gaussian returns; it ignores the drift, fat tails,
    volatility clustering and autocorrelation, and usually understates multi-period tail risk in crypto.
    """
    if isinstance(periods, bool) or not math.isfinite(periods) or periods <= 0:
        raise ValueError(f"periods must be a positive finite number, got {periods!r}")
    return float(var) * math.sqrt(periods)


# ----------------------------------------------------------------------------------------------------
# drawdowns


def drawdown(equity: Sequence[float] | pd.Series | npt.NDArray[np.float64]) -> tuple[float, float]:
    """``(current drawdown, max drawdown to date)`` of an equity curve, each a negative fraction or 0.0.

    current = last / running peak - 1; max = the lowest value of ``equity / running peak - 1``. Non-finite
    values are ignored; equity must be non-negative (else ``ValueError``). Points before the first
    positive value have no peak and count as no drawdown.
    """
    array = np.asarray(equity, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"equity must be one-dimensional, got shape {array.shape}")
    array = array[np.isfinite(array)]
    if array.size == 0:
        raise ValueError("equity must hold at least one finite value")
    if (array < 0).any():
        raise ValueError("equity must be non-negative")
    peak = np.maximum.accumulate(array)
    ratio = np.divide(array, peak, out=np.ones_like(array), where=peak > 0)
    drawdowns = ratio - 1.0
    return float(drawdowns[-1]) + 0.0, float(drawdowns.min()) + 0.0


def projected_max_drawdown(
    returns: npt.ArrayLike, horizon: int, paths: int = 2000, seed: int = 7, quantile: float = 0.95
) -> float:
    """Bootstrap the maximum drawdown over the next ``horizon`` periods (a negative fraction or 0.0).

    ``paths`` paths of ``horizon`` returns are drawn with replacement from the finite ``returns`` (one
    ``np.random.default_rng(seed).integers(0, n, size=(paths, horizon))`` draw), compounded from an equity
    of 1.0, and each path's maximum drawdown is taken (the starting equity counts as a peak). The result is
    the bad-tail quantile of those drawdowns: with ``quantile=0.95``, the ``1 - 0.95`` quantile (linear),
    i.e. a drawdown that only the 5 % worst paths exceed. Deterministic for a given seed.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    if isinstance(paths, bool) or not isinstance(paths, int | np.integer) or paths < 1:
        raise ValueError(f"paths must be a positive integer, got {paths!r}")
    quantile = _check_probability(quantile, "quantile")
    values = _clean_returns(returns)
    if (values < -1.0).any():
        raise ValueError("returns must be >= -1 (a simple return cannot lose more than everything)")
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, values.size, size=(int(paths), int(horizon)))]
    equity = np.cumprod(1.0 + draws, axis=1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), 1.0)
    worst = (equity / peak - 1.0).min(axis=1)
    return float(np.quantile(worst, 1.0 - quantile, method="linear")) + 0.0


# ----------------------------------------------------------------------------------------------------
# position-level metrics


def liquidation_distance(
    quantity: float, mark: float, liquidation_price: float | None, atr: float | None
) -> LiquidationDistance:
    """Distance from the mark to the liquidation price in the adverse direction, as a fraction and in ATRs.

    ``quantity`` is signed (long > 0). See :class:`LiquidationDistance` for the formulas and when a part is
    ``None``. ``mark`` must be positive and finite.
    """
    if not math.isfinite(mark) or mark <= 0:
        raise ValueError(f"mark must be a positive finite price, got {mark!r}")
    if not math.isfinite(quantity):
        raise ValueError(f"quantity must be finite, got {quantity!r}")
    if quantity == 0 or liquidation_price is None or not math.isfinite(liquidation_price):
        return LiquidationDistance(pct=None, atrs=None)
    adverse = mark - liquidation_price if quantity > 0 else liquidation_price - mark
    atrs = adverse / atr if atr is not None and math.isfinite(atr) and atr > 0 else None
    return LiquidationDistance(pct=adverse / mark, atrs=atrs)


def funding_cost_per_day(quantity: float, mark: float, rate: float, interval_hours: float) -> float:
    """USD the position pays per day at a funding ``rate`` charged every ``interval_hours``.

    ``quantity * mark * rate * 24 / interval_hours``: with a positive rate longs pay and shorts receive;
    a negative result means the position receives funding.
    """
    if not math.isfinite(interval_hours) or interval_hours <= 0:
        raise ValueError(f"interval_hours must be positive, got {interval_hours!r}")
    for name, value in (("quantity", quantity), ("mark", mark), ("rate", rate)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    return quantity * mark * rate * 24.0 / interval_hours


# ----------------------------------------------------------------------------------------------------
# portfolio-level metrics


def _linked(correlation: Mapping[str, Mapping[str, float | None]], a: str, b: str, threshold: float) -> bool:
    """Whether ``correlation[a][b]`` or ``correlation[b][a]`` is a number ``>= threshold``."""
    for row, col in ((a, b), (b, a)):
        value = correlation.get(row, {}).get(col)
        if value is not None and math.isfinite(value) and value >= threshold:
            return True
    return False


def correlated_exposure(
    exposures: Mapping[str, float],
    correlation: Mapping[str, Mapping[str, float | None]],
    threshold: float = 0.7,
) -> CorrelatedExposure:
    """Group signed notionals by correlation and net them within each group.

    Two symbols are linked when ``correlation[a][b]`` or ``correlation[b][a]`` is ``>= threshold`` (either
    direction suffices, so a half-filled matrix works; missing, None or NaN = not correlated); groups are
    the connected components of those links over the symbols in ``exposures`` (a symbol always belongs to
    its own group). To see
    what an order in a symbol not yet held adds to, include it with an exposure of 0.0.
    """
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    for symbol, notional in exposures.items():
        if not math.isfinite(notional):
            raise ValueError(f"exposure of {symbol} must be finite, got {notional!r}")
    symbols = sorted(exposures)
    parent = {symbol: symbol for symbol in symbols}

    def find(symbol: str) -> str:
        while parent[symbol] != symbol:
            parent[symbol] = parent[parent[symbol]]
            symbol = parent[symbol]
        return symbol

    for i, a in enumerate(symbols):
        for b in symbols[i + 1 :]:
            if _linked(correlation, a, b, threshold):
                parent[find(a)] = find(b)

    members: dict[str, list[str]] = {}
    for symbol in symbols:
        members.setdefault(find(symbol), []).append(symbol)
    groups = [
        ExposureGroup(
            symbols=tuple(names),
            net=math.fsum(exposures[name] for name in names),
            gross=math.fsum(abs(exposures[name]) for name in names),
        )
        for names in members.values()
    ]
    groups.sort(key=lambda group: (-abs(group.net), group.symbols))
    by_symbol = {name: abs(group.net) for group in groups for name in group.symbols}
    largest = max((abs(group.net) for group in groups), default=0.0)
    return CorrelatedExposure(groups=tuple(groups), largest_net=largest, by_symbol=by_symbol)


def portfolio_pnl(position_notionals: Mapping[str, float], returns: pd.DataFrame) -> pd.Series | None:
    """Per-row USD P&L ``sum_i notional_i * r_i,t`` over the rows where every held symbol has a return; None
    with no position."""
    held = {symbol: float(n) for symbol, n in position_notionals.items() if n != 0}
    for symbol, notional in held.items():
        if not math.isfinite(notional):
            raise ValueError(f"notional of {symbol} must be finite, got {notional!r}")
    if not held:
        return None
    missing = sorted(symbol for symbol in held if symbol not in returns.columns)
    if missing:
        raise ValueError(f"returns has no column for {', '.join(missing)}")
    frame = returns[list(held)].astype(float).replace([np.inf, -np.inf], np.nan).dropna()
    weights = pd.Series(held, dtype=float)
    return frame.mul(weights, axis=1).sum(axis=1)


def _check_method(method: str) -> None:
    if method not in ("historical", "parametric"):
        raise ValueError(f"method must be 'historical' or 'parametric', got {method!r}")


def _portfolio_tail(
    position_notionals: Mapping[str, float], returns: pd.DataFrame, level: float, method: Method, es: bool
) -> float:
    level = _check_probability(level, "level")
    _check_method(method)
    pnl = portfolio_pnl(position_notionals, returns)
    if pnl is None:
        return 0.0
    if method == "historical":
        return historical_es(pnl, level) if es else historical_var(pnl, level)
    return parametric_es(pnl, level) if es else parametric_var(pnl, level)


def portfolio_var(
    position_notionals: Mapping[str, float], returns: pd.DataFrame, level: float, method: Method
) -> float:
    """VaR in USD (positive = loss) of the P&L ``sum_i notional_i * r_i,t``.

    ``returns`` holds per-symbol simple returns (columns = symbols); only the rows where every held symbol
    has a finite return are used. Zero notionals are ignored; no positions -> 0.0.
    """
    return _portfolio_tail(position_notionals, returns, level, method, es=False)


def portfolio_es(
    position_notionals: Mapping[str, float], returns: pd.DataFrame, level: float, method: Method
) -> float:
    """Expected shortfall in USD (positive = loss) of the same P&L series as :func:`portfolio_var`."""
    return _portfolio_tail(position_notionals, returns, level, method, es=True)
