"""Position sizing: every applicable rule proposes a largest quantity; the smallest wins.

Rules (each a maximum quantity for the new position):
- ``volatility``: equity x RISK_PER_TRADE / loss per unit at the stop (the stop distance is the decision's
  stop, else STOP_ATR_MULTIPLE ATRs of RISK_ATR_TIMEFRAME): lose at most RISK_PER_TRADE of equity, fees and
  slippage included, if the stop is hit (``loss_per_unit``);
- ``kelly``: equity x KELLY_FRACTION x Kelly / loss per unit at the stop, Kelly = p - (1 - p) / b from
  the win rate p and payoff b of the signal source's closed trades, shrunk toward a prior (p 0.5, b 1.5)
  with weight n / (n + KELLY_PRIOR_TRADES), and the prior alone below KELLY_MIN_TRADES trades;
- ``max_position_size``: notional at most MAX_POSITION_SIZE x equity;
- ``margin``: the initial margin (notional / leverage) fits in 99 % of the free collateral;
- ``total_exposure``: the gross notional of all positions stays within MAX_TOTAL_EXPOSURE x equity;
- ``correlated_exposure``: the net notional of the correlated group (correlation >= 0.7) stays within
  MAX_CORRELATED_EXPOSURE x equity.
The two risk-based rules (volatility, kelly) are scaled by the streak multiplier; caps never are. The
quantity is rounded *down* to the market step, so it is monotone: never smaller with more equity, never
larger with a wider stop. The step is the market's (``shared.exchange.markets``: 0.001 BTC, 0.01 ETH, 1 SUI).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agent.risk.presets import RiskPolicy

QUANTITY_STEP = 0.001  # a market's step when nothing says otherwise (``shared.exchange.markets``)
MIN_QUANTITY = 0.001
MARGIN_BUFFER = 0.99  # leave 1 % of free collateral for fees


def floor_to_step(quantity: float, step: float = QUANTITY_STEP) -> float:
    """Down to a multiple of ``step`` (a market's step size), without float dust."""
    decimals = max(0, -math.floor(math.log10(step))) + 3 if step < 1 else 0
    return round(math.floor(quantity / step + 1e-9) * step, max(decimals, 9))


@dataclass(frozen=True)
class TradeStats:
    """The journal's closed trades (oldest first), as sizing needs them."""

    trades: int = 0
    wins: int = 0
    losses: int = 0
    average_win: float = 0.0
    average_loss: float = 0.0  # a positive magnitude
    losses_in_a_row: int = 0
    wins_in_a_row: int = 0

    @classmethod
    def from_pnls(cls, pnls: Sequence[float]) -> TradeStats:
        wins = [p for p in pnls if p > 0]
        losses = [-p for p in pnls if p < 0]
        streak_losses = streak_wins = 0
        for pnl in reversed(pnls):
            if pnl < 0 and streak_wins == 0:
                streak_losses += 1
            elif pnl > 0 and streak_losses == 0:
                streak_wins += 1
            else:
                break
        return cls(
            trades=len(pnls), wins=len(wins), losses=len(losses),
            average_win=sum(wins) / len(wins) if wins else 0.0,
            average_loss=sum(losses) / len(losses) if losses else 0.0,
            losses_in_a_row=streak_losses, wins_in_a_row=streak_wins,
        )  # fmt: skip


@dataclass(frozen=True)
class KellyEstimate:
    win_rate: float
    payoff: float
    weight: float  # how much of the estimate is the journal's (the rest is the prior)
    fraction: float  # full Kelly: p - (1 - p) / b

    def describe(self, trades: int) -> str:
        return (
            f"Kelly {self.fraction:.3f} from win rate {self.win_rate:.2f} and payoff {self.payoff:.2f} "
            f"({trades} trades, {self.weight:.0%} journal)"
        )


def kelly(stats: TradeStats, policy: RiskPolicy) -> KellyEstimate:
    trusted = stats.trades >= max(policy.kelly_min_trades, 1)
    weight = stats.trades / (stats.trades + policy.kelly_prior_trades) if trusted else 0.0
    observed_rate = stats.wins / stats.trades if stats.trades else policy.prior_win_rate
    observed_payoff = (
        stats.average_win / stats.average_loss if stats.wins and stats.losses else policy.prior_payoff
    )
    win_rate = weight * observed_rate + (1 - weight) * policy.prior_win_rate
    payoff = weight * observed_payoff + (1 - weight) * policy.prior_payoff
    return KellyEstimate(win_rate, payoff, weight, win_rate - (1 - win_rate) / payoff)


def streak_multiplier(stats: TradeStats) -> float:
    if stats.losses_in_a_row >= 3:
        return 0.25
    if stats.losses_in_a_row == 2:
        return 0.5
    if stats.wins_in_a_row >= 3:
        return 1.25
    return 1.0


@dataclass(frozen=True)
class SizingInputs:
    equity: float
    free_collateral: float
    price: float
    stop_distance: float | None  # None: no stop, so the risk-based rules cannot apply
    leverage: float
    other_gross_notional: float  # |notional| of the positions in other markets
    correlated_net: float  # net notional of the correlated group in the trade's direction (signed: + adds)
    kelly_fraction: float  # full Kelly of the journal (shrunk)
    streak: float
    step: float = QUANTITY_STEP  # the market's step size
    direction: int = 1  # +1 a long, -1 a short
    taker_fee: float = 0.0  # the market's taker fee rate: paid on the entry and on the stop's exit
    slippage_bps: float = 0.0  # paid on the entry and on the stop's exit (market orders)
    funding_per_unit: float = 0.0  # USD one unit is expected to pay in funding over the horizon (>= 0)


def loss_per_unit(
    price: float, stop_distance: float, direction: int, taker_fee: float, slippage_bps: float
) -> float:
    """What one unit loses from an entry at market at ``price`` to an exit at its stop, as the paper exchange
    fills them: the entry fills ``slippage_bps`` worse than ``price``, the stop (a stop-market) as much worse
    than its trigger, and each pays the taker fee on its notional. For a long (stop S = price - distance,
    s = slippage_bps / 10^4, f = taker_fee): price (1 + s) (1 + f) - S (1 - s) (1 - f); for a short
    (S = price + distance): S (1 + s) (1 + f) - price (1 - s) (1 - f). Without fees and slippage: the
    distance."""
    slip = slippage_bps / 10_000
    if direction > 0:
        stop = price - stop_distance
        return price * (1 + slip) * (1 + taker_fee) - stop * (1 - slip) * (1 - taker_fee)
    stop = price + stop_distance
    return stop * (1 + slip) * (1 + taker_fee) - price * (1 - slip) * (1 - taker_fee)


@dataclass(frozen=True)
class Size:
    quantity: float  # rounded down to the step; 0.0 if nothing fits
    binding: str  # the rule that gave the smallest size
    candidates: dict[str, float]  # every rule's largest quantity


def size_position(inputs: SizingInputs, policy: RiskPolicy) -> Size:
    equity, price = inputs.equity, inputs.price
    candidates: dict[str, float] = {}
    if inputs.stop_distance is not None and inputs.stop_distance > 0:
        loss = loss_per_unit(
            price, inputs.stop_distance, inputs.direction, inputs.taker_fee, inputs.slippage_bps
        ) + max(inputs.funding_per_unit, 0.0)
        candidates["volatility"] = equity * policy.risk_per_trade * inputs.streak / loss
        if policy.kelly_fraction > 0:
            candidates["kelly"] = (
                equity * max(inputs.kelly_fraction, 0.0) * policy.kelly_fraction * inputs.streak
            ) / loss
    candidates["max_position_size"] = equity * policy.max_position_size / price
    candidates["margin"] = max(inputs.free_collateral, 0.0) * MARGIN_BUFFER * inputs.leverage / price
    room = max(equity * policy.max_total_exposure - inputs.other_gross_notional, 0.0)
    candidates["total_exposure"] = room / price
    candidates["correlated_exposure"] = (
        max(equity * policy.max_correlated_exposure - max(inputs.correlated_net, 0.0), 0.0) / price
    )
    binding = min(candidates, key=lambda name: (candidates[name], name))
    quantity = floor_to_step(max(candidates[binding], 0.0), inputs.step)
    return Size(quantity, binding, {k: round(v, 9) for k, v in candidates.items()})
