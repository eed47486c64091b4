"""The risk gate: every decision passes here before anything reaches the exchange.

``assess`` turns a decision into a verdict: approved (side, quantity, effective stop) or vetoed with the
reason. In order:
0. a TradingView strategy's add or partial exit (market_position unchanged in side: ``intent_of``) keeps
   the position as it is and opens nothing; it only closes a position of ours on the other side;
1. hold: vetoed, except that a signal against the open position closes it (EXIT_ON_REVERSAL);
2. close: the whole position, reduce-only (always allowed: it only shrinks exposure);
3. entries: trading state (HALTED: no entry; REDUCING: an opposite entry only closes), market blocked
   (EXTERNAL activity, stale data, an order whose outcome is unknown), minimum decision and signal
   confidence, the stop (the decision's, else STOP_ATR_MULTIPLE ATRs), minimum reward/risk when a target
   is given (net of the funding expected over FUNDING_HORIZON_HOURS: ``agent.risk.funding_cost``), maximum
   open positions, the stop before the liquidation price and the liquidation at least MIN_LIQUIDATION_ATR
   ATRs away, a positive Kelly edge, then sizing (``agent.risk.sizing``, the expected
   funding counted in the loss at the stop).
Every check that ran is listed in the verdict's details, which are stored with the decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.risk.funding_cost import expected_funding, reward_risk
from agent.risk.presets import RiskPolicy
from agent.risk.sizing import (
    MIN_QUANTITY,
    QUANTITY_STEP,
    SizingInputs,
    TradeStats,
    kelly,
    size_position,
    streak_multiplier,
)
from shared.alert_fields import intent_of
from shared.exchange.margin import liquidation_price
from shared.models import Decision, DecisionAction, Position, Side, Signal, SignalAction

CORRELATED = 0.7


@dataclass(frozen=True)
class RiskContext:
    """Everything the gate looks at, gathered by the engine (no I/O here)."""

    symbol: str
    price: float
    position: Position  # ours, in this market
    equity: float
    free_collateral: float
    other_notionals: Mapping[str, float] = field(default_factory=dict)  # signed, other markets
    correlation: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    atr: float | None = None  # of the policy's ATR timeframe
    trading_state: str = "ACTIVE"  # ACTIVE | REDUCING | HALTED
    state_reason: str = ""
    blocked: str = ""  # why new entries are blocked in this market ("" = not blocked)
    stats: TradeStats = field(default_factory=TradeStats)  # the signal source's closed trades (Kelly)
    account_stats: TradeStats | None = None  # every closed trade (streaks); None: the same as ``stats``
    maintenance_ratio: float = 0.03
    market_max_leverage: float = 20.0
    step_size: float = QUANTITY_STEP  # the market's quantity step
    min_quantity: float = MIN_QUANTITY  # the market's smallest order
    taker_fee: float = 0.0  # the market's taker fee (sizing counts it on the entry and on the stop's exit)
    slippage_bps: float = 0.0  # expected on market orders (sizing counts it on the entry and the stop's exit)
    funding_rate: float | None = None  # the market's current (or predicted) rate per funding interval
    funding_interval_hours: float = 1.0


@dataclass(frozen=True)
class RiskVerdict:
    approved: bool
    reason: str
    side: Side | None = None
    quantity: float = 0.0
    reduce_only: bool = False
    stop_price: float | None = None  # the protective stop of the new position
    take_profit: float | None = None
    exit_kind: str = ""  # for closes: what a trade it closes is recorded as
    details: dict[str, Any] = field(default_factory=dict)


def _close(position: Position, reason: str, exit_kind: str, details: dict[str, Any]) -> RiskVerdict:
    assert position.side is not None
    return RiskVerdict(
        True, reason, position.side.opposite(), abs(position.quantity), reduce_only=True,
        exit_kind=exit_kind, details=details,
    )  # fmt: skip


def _against(signal: Signal, position: Position) -> bool:
    return (signal.action is SignalAction.BUY and position.quantity < 0) or (
        signal.action is SignalAction.SELL and position.quantity > 0
    )


def _keep(signal: Signal, position: Position, intent: str) -> RiskVerdict:
    """An add or a partial exit of a TradingView strategy: our position is sized by risk, not by the
    strategy's contracts, so it is kept; one of ours on the other side of the strategy closes."""
    held = signal.action.value.replace("buy", "long").replace("sell", "short")
    if position.side is not None and _against(signal, position):
        return _close(
            position, f"the strategy is {held} ({intent}) and we are not: close", "signal_reversed",
            {"checks": ["position_intent"], "intent": intent},
        )  # fmt: skip
    what = "an add to" if intent == "add" else "a partial exit of"
    return RiskVerdict(
        False, f"{what} the strategy's {held} position: ours is kept as it is, nothing new opens",
        details={"rule": "position_kept", "intent": intent},
    )  # fmt: skip


def assess(decision: Decision, signal: Signal, ctx: RiskContext, policy: RiskPolicy) -> RiskVerdict:
    position = ctx.position
    intent = intent_of(signal.raw)
    if intent in ("add", "reduce"):
        return _keep(signal, position, intent)
    if decision.action is DecisionAction.HOLD:
        if policy.exit_on_reversal and position.side is not None and _against(signal, position):
            return _close(
                position, f"signal {signal.action.value} against the open position; analyst held: close it",
                "signal_reversed", {"checks": ["exit_on_reversal"]},
            )  # fmt: skip
        return RiskVerdict(False, "analyst decided to hold", details={"rule": "hold"})
    if decision.action is DecisionAction.CLOSE:
        if position.side is None:
            return RiskVerdict(False, "nothing to close", details={"rule": "nothing_to_close"})
        return _close(position, "close the whole position", "close_signal", {})
    return _assess_entry(decision, signal, ctx, policy)


def _assess_entry(decision: Decision, signal: Signal, ctx: RiskContext, policy: RiskPolicy) -> RiskVerdict:
    side = Side.BUY if decision.action is DecisionAction.OPEN_LONG else Side.SELL
    position, price = ctx.position, ctx.price
    word = "long" if side is Side.BUY else "short"
    if position.side is side:
        return RiskVerdict(False, f"already {word} {ctx.symbol}", details={"rule": "already_positioned"})
    flipping = position.side is side.opposite()
    checks: list[str] = []

    def veto(reason: str, rule: str) -> RiskVerdict:
        details = {"checks": checks, "vetoed_by": reason, "rule": rule}
        if flipping:  # the opposite entry is refused, but the position it argues against still closes
            return _close(position, f"close only: {reason}", "signal_reversed", details)
        return RiskVerdict(False, reason, details=details)

    if ctx.trading_state != "ACTIVE":
        return veto(
            f"trading {ctx.trading_state}: no new {word}"
            + (f" ({ctx.state_reason})" if ctx.state_reason else ""),
            "trading_state",
        )
    checks.append("trading_state")
    if ctx.blocked:
        return veto(ctx.blocked, "market_blocked")
    if ctx.equity <= 0 or price <= 0:
        return veto("no equity or no price", "market_blocked")
    checks.append("market_open")
    if decision.confidence < policy.min_confidence:
        minimum = policy.min_confidence
        return veto(f"confidence {decision.confidence:.2f} below MIN_CONFIDENCE {minimum:.2f}", "confidence")
    if signal.confidence is not None and signal.confidence < policy.min_confidence:
        return veto(
            f"signal confidence {signal.confidence:.2f} below MIN_CONFIDENCE {policy.min_confidence:.2f}",
            "confidence",
        )
    checks.append("confidence")
    stop = _stop_price(decision, side, price, ctx.atr, policy)
    if isinstance(stop, str):
        return veto(stop, "stop")
    checks.append("stop")
    stop_distance = abs(price - stop) if stop is not None else None
    funding = expected_funding(
        ctx.funding_rate, ctx.funding_interval_hours, policy.funding_horizon_hours, price, side.sign
    )
    target = decision.take_profit
    ratio: float | None = None
    if target is not None and stop_distance:
        if (target - price) * side.sign <= 0:
            return veto(f"take profit {target:g} is on the wrong side of the price {price:g}", "take_profit")
        ratio = reward_risk(price, target, stop_distance, funding.counted)
        if ratio < policy.min_reward_risk:
            minimum = policy.min_reward_risk
            reason = f"reward/risk {ratio:.2f} below MIN_REWARD_RISK {minimum:g}"
            if funding.counted > 0:
                plain = reward_risk(price, target, stop_distance)
                reason += (
                    f" after the expected funding of {funding.counted:,.2f} per unit ({funding.bps:.1f} bps "
                    f"over FUNDING_HORIZON_HOURS {funding.horizon_hours:g} at rate {funding.rate:g}); "
                    f"{plain:.2f} without funding"
                )
            return veto(reason, "reward_risk")
        checks.append("reward_risk")
    open_elsewhere = sum(1 for q in ctx.other_notionals.values() if q)
    if not flipping and open_elsewhere >= policy.max_open_positions:
        limit = policy.max_open_positions
        return veto(f"{open_elsewhere} positions open, MAX_OPEN_POSITIONS is {limit}", "open_positions")
    checks.append("open_positions")
    # a whole number, as exchanges set it (an AI's 2.5 becomes 2)
    leverage = float(max(1, math.floor(min(decision.leverage or policy.leverage, policy.max_leverage,
                                           ctx.market_max_leverage))))  # fmt: skip
    problem = _liquidation_problem(side, price, stop, leverage, ctx, policy)
    if problem:
        return veto(problem, "liquidation")
    checks.append("liquidation_distance")
    edge = kelly(ctx.stats, policy)
    if stop_distance and policy.kelly_fraction > 0 and edge.fraction <= 0:
        return veto(f"no edge for {signal.source}: {edge.describe(ctx.stats.trades)}", "kelly")
    checks.append("kelly")
    size = size_position(
        SizingInputs(
            equity=ctx.equity, free_collateral=ctx.free_collateral + _released_margin(ctx, leverage),
            price=price, stop_distance=stop_distance, leverage=leverage,
            other_gross_notional=sum(abs(v) for v in ctx.other_notionals.values()),
            correlated_net=_correlated_net(ctx, side), kelly_fraction=edge.fraction,
            streak=streak_multiplier(ctx.account_stats or ctx.stats), step=ctx.step_size,
            direction=side.sign, taker_fee=ctx.taker_fee, slippage_bps=ctx.slippage_bps,
            funding_per_unit=funding.counted,
        ),
        policy,
    )  # fmt: skip
    details = {
        "checks": checks, "sizes": size.candidates, "binding": size.binding, "stop": stop,
        "stop_distance": stop_distance, "leverage": leverage, "kelly": round(edge.fraction, 6),
        "streak": streak_multiplier(ctx.account_stats or ctx.stats),
        "reward_risk": round(ratio, 6) if ratio is not None else None,
        "funding": funding.details(size.quantity),
        "funding_cost_usd": round(funding.per_unit * size.quantity, 6),
    }  # fmt: skip
    if size.quantity < ctx.min_quantity - 1e-12:
        smallest, minimum = size.candidates[size.binding], ctx.min_quantity
        return veto(
            f"size {smallest:.6f} below the minimum {minimum:g} of {ctx.symbol} (bound by {size.binding})",
            "size",
        )
    flip = abs(position.quantity) if flipping else 0.0
    reason = (
        f"{word} {size.quantity:g} (notional {size.quantity * price:,.2f}, bound by {size.binding})"
        + (
            f"; stop {stop:,.2f} ({stop_distance / price:.2%} away)"
            if stop is not None and stop_distance
            else ""
        )
        + (f"; also closes the opposite position of {flip:g}" if flip else "")
    )
    return RiskVerdict(
        True, reason, side, round(size.quantity + flip, 9), stop_price=stop, take_profit=target,
        exit_kind="flip" if flip else "", details=details,
    )  # fmt: skip


def _stop_price(
    decision: Decision, side: Side, price: float, atr: float | None, policy: RiskPolicy
) -> float | str | None:
    """The protective stop of the entry, or a veto reason (str)."""
    if decision.stop_loss is not None:
        if (price - decision.stop_loss) * side.sign <= 0:
            return f"stop loss {decision.stop_loss:g} is on the wrong side of the price {price:g}"
        return decision.stop_loss
    if policy.stop_atr_multiple == 0:
        return None  # STOP_ATR_MULTIPLE=0: no automatic stop (only the caps size the position)
    if atr is None or not atr > 0:
        return f"no stop: the decision gave none and the {policy.atr_timeframe} ATR is not known yet"
    return price - side.sign * policy.stop_atr_multiple * atr


def _liquidation_problem(
    side: Side, price: float, stop: float | None, leverage: float, ctx: RiskContext, policy: RiskPolicy
) -> str:
    quantity = side.sign * 1.0
    liquidation = liquidation_price(price, quantity, price / leverage, ctx.maintenance_ratio)
    if liquidation is None or liquidation <= 0:
        return ""
    if stop is not None and (stop - liquidation) * side.sign <= 0:
        return f"stop {stop:,.2f} is beyond the liquidation price {liquidation:,.2f} at {leverage:g}x"
    if ctx.atr and abs(price - liquidation) / ctx.atr < policy.min_liquidation_atr:
        atrs = abs(price - liquidation) / ctx.atr
        minimum = policy.min_liquidation_atr
        return f"liquidation {liquidation:,.2f} only {atrs:.1f} ATRs away (MIN_LIQUIDATION_ATR {minimum:g})"
    return ""


def _released_margin(ctx: RiskContext, leverage: float) -> float:
    """A flip first closes the opposite position, which frees its margin (about notional / leverage)."""
    return abs(ctx.position.quantity) * ctx.price / leverage if ctx.position.quantity else 0.0


def _correlated_net(ctx: RiskContext, side: Side) -> float:
    """Net notional, in the trade's direction, of the other markets correlated with this one."""
    row = ctx.correlation.get(ctx.symbol, {})
    net = 0.0
    for symbol, notional in ctx.other_notionals.items():
        value = row.get(symbol)
        if value is not None and value >= CORRELATED:
            net += notional * side.sign
    return net
