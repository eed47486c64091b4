"""Isolated-margin arithmetic of a Bluefin-style perpetual.

A position posts ``margin = entry notional / leverage``. It is liquidated when its equity (margin plus
unrealised PnL) falls to the maintenance margin, ``maintenance_ratio x mark notional``:

- long:  liquidation price = (entry - margin / size) / (1 - maintenance_ratio)
- short: liquidation price = (entry + margin / size) / (1 + maintenance_ratio)
"""

from __future__ import annotations


def initial_margin(size: float, price: float, leverage: float) -> float:
    if leverage < 1:
        raise ValueError("leverage must be at least 1")
    return abs(size) * price / leverage


def liquidation_price(entry: float, quantity: float, margin: float, maintenance_ratio: float) -> float | None:
    """None for a flat position; never negative (a fully collateralised long cannot be liquidated)."""
    if quantity == 0:
        return None
    size = abs(quantity)
    if quantity > 0:
        return max((entry - margin / size) / (1 - maintenance_ratio), 0.0)
    return (entry + margin / size) / (1 + maintenance_ratio)


def crossed_liquidation(quantity: float, liquidation: float | None, low: float, high: float) -> bool:
    if liquidation is None or quantity == 0:
        return False
    return low <= liquidation if quantity > 0 else high >= liquidation
