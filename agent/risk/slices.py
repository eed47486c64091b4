"""The risk gate of an execution algo's slice (TWAP, iceberg): a given quantity, approved or vetoed.

A signal's entry is sized by the gate (``agent.risk.gate``); an algo's slice comes with its quantity, so
here the same limits are checked against it instead:
- a slice that only reduces the position (opposite side, at most its size, counting the slices still in
  flight) goes in any trading state, reduce-only;
- one that grows exposure needs trading ACTIVE (REDUCING and HALTED stop it), an open market (EXTERNAL
  activity, stale data, another order of unknown outcome), equity and a price, MAX_OPEN_POSITIONS for a new
  position, the leverage within the market's, MAX_POSITION_SIZE and MAX_TOTAL_EXPOSURE of equity for the
  position it leaves, the margin it needs within the free collateral, and the liquidation price at least
  MIN_LIQUIDATION_ATR ATRs away.
No I/O here: the engine side (``agent.engine.control``) gathers the context.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.risk.presets import RiskPolicy
from shared.exchange.margin import liquidation_price
from shared.models import Side

EPS = 1e-12
ALGO_PREFIX = "algo-"  # the client id of every algo; its slices' parent_client_id


def is_slice(parent_client_id: str | None) -> bool:
    """Is an order with this parent a slice of an algo?"""
    return (parent_client_id or "").startswith(ALGO_PREFIX)


@dataclass(frozen=True)
class Slice:
    """One order an algo wants to send."""

    algo: str
    symbol: str
    side: Side
    quantity: float
    price: float | None  # the limit price (None: a market order)
    role: str


@dataclass(frozen=True)
class SliceContext:
    price: float  # the slice's price, else the mark
    position: float  # ours in this market, signed, with the algo slices still in flight
    equity: float
    free_collateral: float
    leverage: float  # what the slice is sent with
    other_notionals: Mapping[str, float] = field(default_factory=dict)  # signed, other markets
    trading_state: str = "ACTIVE"
    state_reason: str = ""
    blocked: str = ""
    atr: float | None = None
    maintenance_ratio: float = 0.03
    market_max_leverage: float = 20.0


@dataclass(frozen=True)
class SliceVerdict:
    approved: bool
    reason: str
    rule: str = ""
    reduce_only: bool = False


def reduces(piece: Slice, position: float) -> bool:
    """Does the slice only shrink the position (never through zero)?"""
    return position * piece.side.sign < 0 and piece.quantity <= abs(position) + EPS


def assess_slice(piece: Slice, ctx: SliceContext, policy: RiskPolicy) -> SliceVerdict:
    if reduces(piece, ctx.position):
        return SliceVerdict(True, f"reduces the position {ctx.position:g}", "reduces", reduce_only=True)

    def veto(reason: str, rule: str) -> SliceVerdict:
        return SliceVerdict(False, reason, rule)

    if ctx.trading_state != "ACTIVE":
        why = f" ({ctx.state_reason})" if ctx.state_reason else ""
        return veto(
            f"trading {ctx.trading_state}{why}: a slice that grows exposure is not sent", "trading_state"
        )
    if ctx.blocked:
        return veto(ctx.blocked, "market_blocked")
    if ctx.equity <= 0 or ctx.price <= 0:
        return veto("no equity or no price", "market_blocked")
    open_elsewhere = sum(1 for notional in ctx.other_notionals.values() if notional)
    if abs(ctx.position) <= EPS and open_elsewhere >= policy.max_open_positions:
        limit = policy.max_open_positions
        return veto(f"{open_elsewhere} positions open, MAX_OPEN_POSITIONS is {limit}", "open_positions")
    if ctx.leverage > min(policy.max_leverage, ctx.market_max_leverage) + EPS:
        allowed = min(policy.max_leverage, ctx.market_max_leverage)
        return veto(f"leverage {ctx.leverage:g}x above the allowed {allowed:g}x", "leverage")
    after = ctx.position + piece.side.sign * piece.quantity
    notional = abs(after) * ctx.price
    cap = ctx.equity * policy.max_position_size
    if notional > cap + EPS:
        return veto(
            f"position notional {notional:,.2f} after the slice above MAX_POSITION_SIZE ({cap:,.2f})",
            "max_position_size",
        )
    gross = notional + sum(abs(v) for v in ctx.other_notionals.values())
    total_cap = ctx.equity * policy.max_total_exposure
    if gross > total_cap + EPS:
        return veto(
            f"gross exposure {gross:,.2f} after the slice above MAX_TOTAL_EXPOSURE ({total_cap:,.2f})",
            "total_exposure",
        )
    grown = max(abs(after) - abs(ctx.position), 0.0) if after * ctx.position > 0 else abs(after)
    margin = grown * ctx.price / ctx.leverage
    if margin > ctx.free_collateral + EPS:
        return veto(
            f"margin {margin:,.2f} above the free collateral {ctx.free_collateral:,.2f}", "free_collateral"
        )
    problem = _liquidation_problem(after, ctx, policy)
    if problem:
        return veto(problem, "liquidation")
    return SliceVerdict(True, f"position {after:g} within the limits", "approved")


def _liquidation_problem(after: float, ctx: SliceContext, policy: RiskPolicy) -> str:
    if not ctx.atr or abs(after) <= EPS:
        return ""
    sign = 1.0 if after > 0 else -1.0
    liquidation = liquidation_price(ctx.price, sign, ctx.price / ctx.leverage, ctx.maintenance_ratio)
    if liquidation is None or liquidation <= 0:
        return ""
    atrs = abs(ctx.price - liquidation) / ctx.atr
    if atrs < policy.min_liquidation_atr:
        minimum = policy.min_liquidation_atr
        return f"liquidation {liquidation:,.2f} only {atrs:.1f} ATRs away (MIN_LIQUIDATION_ATR {minimum:g})"
    return ""
