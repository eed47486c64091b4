"""Shadow-book accounting: one analyst's paper positions, opened at the decision price and closed on later
candles by the decision's stop or target, a close, or a reversal. Pure functions and a small state; the
arena (``agent.arena.arena``) stores them.

Fill convention, that of the paper exchange in a backtest (``shared.exchange.paper``):
- an entry and a market exit (a close or a reversal) fill at the price plus ``slippage_bps`` against us;
- a stop triggers when a candle's low (long) or high (short) reaches it and fills at the stop, or at the
  candle's open when the candle opened beyond it (a gap), never outside the candle's range, then slippage;
- a take-profit fills at its own price (a resting limit, even across a gap);
- a candle that reaches both stop and target is taken as stopped (the worse case);
- every fill pays the market's taker fee on its notional (the conservative side of maker/taker);
- pnl = (exit - entry) x quantity x direction - both fees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.models import Side


@dataclass
class ShadowPosition:
    """An open paper position of one analyst in one market."""

    row_id: int
    analyst: str
    signal_id: int
    symbol: str
    side: Side
    quantity: float
    entry_price: float
    opened_at: datetime
    stop: float | None
    target: float | None
    taker_fee: float
    slippage_bps: float


@dataclass(frozen=True)
class ShadowExit:
    price: float
    reason: str  # stop | target | close_signal | signal_reversed | ...
    at: datetime
    fees: float
    pnl: float


def market_fill(price: float, side: Side, slippage_bps: float) -> float:
    """Where a market order of ``side`` fills on ``price``: slippage against it."""
    return price * (1 + side.sign * slippage_bps / 10_000)


def fees(position: ShadowPosition, exit_price: float) -> float:
    """The taker fee on the entry's and the exit's notional."""
    return position.taker_fee * position.quantity * (position.entry_price + exit_price)


def settle(position: ShadowPosition, exit_price: float, reason: str, at: datetime) -> ShadowExit:
    """The position closed at ``exit_price`` (already including slippage)."""
    paid = fees(position, exit_price)
    gross = (exit_price - position.entry_price) * position.quantity * position.side.sign
    return ShadowExit(exit_price, reason, at, paid, gross - paid)


def close_at_market(position: ShadowPosition, price: float, reason: str, at: datetime) -> ShadowExit:
    """Closed by a market order on ``price`` (a close decision, a reversal)."""
    return settle(position, market_fill(price, position.side.opposite(), position.slippage_bps), reason, at)


def candle_exit(
    position: ShadowPosition, open_: float, high: float, low: float, at: datetime
) -> ShadowExit | None:
    """The stop or target a candle reached (the stop first when both), or None."""
    long = position.side is Side.BUY
    stop, target = position.stop, position.target
    if stop is not None and (low <= stop if long else high >= stop):
        price = open_ if (open_ <= stop if long else open_ >= stop) else stop  # a gap fills at the open
        price = min(max(price, low), high)
        return settle(
            position, market_fill(price, position.side.opposite(), position.slippage_bps), "stop", at
        )
    if target is not None and (high >= target if long else low <= target):
        return settle(position, target, "target", at)
    return None


def unrealized(position: ShadowPosition, mark: float) -> float:
    """What closing at ``mark`` would make now (both fees, the exit's slippage)."""
    exit_price = market_fill(mark, position.side.opposite(), position.slippage_bps)
    return settle(position, exit_price, "open", position.opened_at).pnl
