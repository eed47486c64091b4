"""Pure position arithmetic shared by our books and the paper exchange's books."""

from __future__ import annotations

from dataclasses import dataclass

from shared.models import Position, Side

EPSILON = 1e-12


@dataclass(frozen=True)
class FillEffect:
    position: Position  # after the fill
    realized_pnl: float  # PnL realised by the part of the fill that reduced the position (before fees)
    closed_quantity: float  # how much of the previous position the fill closed
    previous: Position


def apply_fill(position: Position, side: Side, quantity: float, price: float) -> FillEffect:
    """Apply a fill to a net position (signed quantity), with average-price entry accounting.

    A fill in the position's direction raises the quantity and averages the entry price; an opposite fill
    first closes (realising PnL at ``price``), and whatever is left opens a new position at ``price``.
    """
    if quantity <= 0 or price <= 0:
        raise ValueError("quantity and price must be positive")
    signed = side.sign * quantity
    current = position.quantity
    if abs(current) < EPSILON or (current > 0) == (signed > 0):
        new_qty = current + signed
        entry = (abs(current) * position.entry_price + quantity * price) / abs(new_qty)
        return FillEffect(
            Position(position.symbol, new_qty, entry, position.realized_pnl), 0.0, 0.0, position
        )
    closed = min(abs(current), quantity)
    direction = 1.0 if current > 0 else -1.0
    realized = (price - position.entry_price) * closed * direction
    new_qty = current + signed
    if abs(new_qty) < EPSILON:
        new_position = Position(position.symbol, 0.0, 0.0, position.realized_pnl + realized)
    elif (new_qty > 0) == (current > 0):
        new_position = Position(
            position.symbol, new_qty, position.entry_price, position.realized_pnl + realized
        )
    else:
        new_position = Position(position.symbol, new_qty, price, position.realized_pnl + realized)
    return FillEffect(new_position, realized, closed, position)
