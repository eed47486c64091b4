"""The risk picture served at ``/api/risk`` and sent to the dashboard: trading state, limits and metrics.

Metrics of the open portfolio (our positions at their marks):
- VaR and expected shortfall at 95 % and 99 %, historical and parametric (Gaussian), in USD, of the
  portfolio's P&L over one hour, from the markets' recent hourly returns (the last closed 1h candles), and
  over one day by the square-root-of-time rule; ``None`` with fewer than 20 common hourly returns;
- drawdown now and to date (from the equity samples and the persisted peak), and projected: the 95 %
  worst maximum drawdown over the next 24 hours by bootstrapping the portfolio's hourly returns;
- per position: notional, liquidation price and its distance (fraction of the mark and in ATRs of the
  risk timeframe), funding cost per day (positive = it pays);
- exposure: gross, net, and the net of correlated markets counted together (correlation >= 0.7).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from agent.risk.metrics import (
    correlated_exposure,
    drawdown,
    funding_cost_per_day,
    historical_es,
    historical_var,
    liquidation_distance,
    parametric_es,
    parametric_var,
    portfolio_pnl,
    projected_max_drawdown,
    scale_to_horizon,
)
from agent.risk.presets import RiskPolicy

MIN_RETURNS = 20
LEVELS = (0.95, 0.99)


@dataclass(frozen=True)
class HeldPosition:
    symbol: str
    quantity: float  # signed
    entry_price: float
    mark: float
    liquidation_price: float | None = None
    atr: float | None = None
    funding_rate: float | None = None


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _tail_metrics(pnl: pd.Series) -> dict[str, Any]:
    """VaR and ES (USD, positive = loss) of an hourly P&L series, per hour and per day."""
    result: dict[str, Any] = {}
    for horizon, periods in (("hour", 1), ("day", 24)):
        values: dict[str, float | None] = {}
        for level in LEVELS:
            tag = f"{int(level * 100)}"
            for name, function in (
                (f"var_historical_{tag}", historical_var), (f"var_parametric_{tag}", parametric_var),
                (f"es_historical_{tag}", historical_es), (f"es_parametric_{tag}", parametric_es),
            ):  # fmt: skip
                values[name] = _round(scale_to_horizon(function(pnl, level), periods), 2)
        result[horizon] = values
    return result


def risk_report(
    positions: Sequence[HeldPosition],
    hourly_returns: pd.DataFrame,
    equity: float,
    equity_samples: Sequence[float],
    peak_equity: float,
    correlation: Mapping[str, Mapping[str, float | None]],
    policy: RiskPolicy,
    trading_state: Mapping[str, Any],
    funding_interval_hours: float,
) -> dict[str, Any]:
    notionals = {p.symbol: p.quantity * p.mark for p in positions}
    held = {s: n for s, n in notionals.items() if n}
    pnl: pd.Series | None = None
    if held and all(s in hourly_returns.columns for s in held):
        pnl = portfolio_pnl(held, hourly_returns)
        if pnl is not None and len(pnl) < MIN_RETURNS:
            pnl = None
    tail = _tail_metrics(pnl) if pnl is not None else {"hour": None, "day": None}
    samples = [*equity_samples, equity] if equity_samples else [equity]
    current, worst = drawdown(samples)
    if peak_equity > 0:
        current = min(current, equity / peak_equity - 1)
        worst = min(worst, current)
    projected = (
        projected_max_drawdown((pnl / equity).to_numpy(), horizon=24)
        if pnl is not None and equity > 0
        else 0.0
    )
    groups = correlated_exposure(held, correlation)
    return {
        "state": dict(trading_state),
        "limits": policy.as_dict(),
        "metrics": {
            "equity": _round(equity, 2),
            "exposure": {
                "gross": _round(sum(abs(n) for n in held.values()), 2),
                "net": _round(sum(held.values()), 2),
                "gross_of_equity": _round(sum(abs(n) for n in held.values()) / equity, 4)
                if equity > 0
                else None,
                "by_symbol": {s: _round(n, 2) for s, n in sorted(held.items())},
                "correlated_groups": [
                    {"symbols": list(g.symbols), "net": _round(g.net, 2), "gross": _round(g.gross, 2)}
                    for g in groups.groups
                ],
                "largest_correlated_net": _round(groups.largest_net, 2),
            },
            "var_es_usd": tail,
            "hourly_returns_used": 0 if pnl is None else len(pnl),
            "drawdown": {
                "current": _round(current),
                "max_to_date": _round(worst),
                "projected_24h_95": _round(projected),
            },
            "positions": [_position_view(p, funding_interval_hours) for p in positions if p.quantity],
        },
    }


def _position_view(position: HeldPosition, funding_interval_hours: float) -> dict[str, Any]:
    distance = liquidation_distance(
        position.quantity, position.mark, position.liquidation_price, position.atr
    )
    funding = (
        funding_cost_per_day(position.quantity, position.mark, position.funding_rate, funding_interval_hours)
        if position.funding_rate is not None
        else None
    )
    return {
        "symbol": position.symbol,
        "quantity": position.quantity,
        "entry_price": position.entry_price,
        "mark": position.mark,
        "notional": _round(position.quantity * position.mark, 2),
        "unrealized_pnl": _round((position.mark - position.entry_price) * position.quantity, 2),
        "liquidation_price": _round(position.liquidation_price, 2),
        "liquidation_distance_pct": _round(distance.pct),
        "liquidation_distance_atr": _round(distance.atrs, 3),
        "funding_cost_per_day": _round(funding, 4),
    }
