"""First risk step: size an approved decision as a fraction of equity, capped by MAX_POSITION_SIZE.

Notional = equity x min(preset fraction for RISK_TOLERANCE, MAX_POSITION_SIZE); quantity is that notional
over the price, rounded *down* to the market's step. Vetoes: hold, nothing to close, already positioned in
the same direction, size below the market minimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.models import Decision, DecisionAction, Position, Side

PRESET_FRACTION = {"conservative": 0.05, "moderate": 0.10, "aggressive": 0.20}
QUANTITY_STEP = 0.001
MIN_QUANTITY = 0.001


@dataclass(frozen=True)
class RiskVerdict:
    approved: bool
    reason: str
    side: Side | None = None
    quantity: float = 0.0
    reduce_only: bool = False


@dataclass(frozen=True)
class RiskLimits:
    max_position_size: float
    risk_tolerance: str
    leverage: float

    @property
    def fraction(self) -> float:
        return min(PRESET_FRACTION[self.risk_tolerance], self.max_position_size)


def floor_to_step(quantity: float, step: float = QUANTITY_STEP) -> float:
    return math.floor(quantity / step + 1e-9) * step


def assess(
    decision: Decision, position: Position, equity: float, price: float, limits: RiskLimits
) -> RiskVerdict:
    if decision.action is DecisionAction.HOLD:
        return RiskVerdict(False, "analyst decided to hold")
    if decision.action is DecisionAction.CLOSE:
        if position.side is None:
            return RiskVerdict(False, "nothing to close")
        qty = abs(position.quantity)
        return RiskVerdict(True, "close the whole position", position.side.opposite(), qty, reduce_only=True)
    side = Side.BUY if decision.action is DecisionAction.OPEN_LONG else Side.SELL
    if position.side is side:
        return RiskVerdict(False, f"already {'long' if side is Side.BUY else 'short'} {position.symbol}")
    if equity <= 0 or price <= 0:
        return RiskVerdict(False, "no equity or no price")
    notional = equity * limits.fraction
    quantity = round(floor_to_step(notional / price), 9)
    if quantity < MIN_QUANTITY:
        return RiskVerdict(False, f"size {notional / price:.6f} below the minimum {MIN_QUANTITY}")
    flip = abs(position.quantity) if position.side is side.opposite() else 0.0
    reason = f"notional {quantity * price:.2f} = {limits.fraction:.2%} of equity {equity:.2f}"
    if flip:
        reason += f"; also closes the opposite position of {flip}"
    return RiskVerdict(True, reason, side, round(quantity + flip, 9))
