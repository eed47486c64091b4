"""The risk gate: hand-computed sizes, every veto, and hypothesis invariants over any decision and account."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.risk.gate import RiskContext, assess
from agent.risk.presets import PRESETS, RiskPolicy
from agent.risk.sizing import MIN_QUANTITY, TradeStats, kelly, streak_multiplier
from shared.models import Decision, DecisionAction, Position, Side, Signal, SignalAction

MODERATE = PRESETS["moderate"]
FLAT = Position("BTC-PERP", 0.0, 0.0)


def decision(
    action: DecisionAction, confidence: float = 0.8, stop: float | None = None, tp: float | None = None
):
    return Decision(action, confidence, "test", "rules", stop_loss=stop, take_profit=tp)


def signal(action: SignalAction = SignalAction.BUY, confidence: float | None = None) -> Signal:
    return Signal("k", "tradingview", "BTC-PERP", action, confidence=confidence)


def context(**overrides: object) -> RiskContext:
    values: dict[str, object] = {
        "symbol": "BTC-PERP", "price": 40_000.0, "position": FLAT, "equity": 10_000.0,
        "free_collateral": 10_000.0, "atr": 100.0,
    }  # fmt: skip
    values.update(overrides)
    return RiskContext(**values)  # type: ignore[arg-type]


def test_hand_computed_size_is_bound_by_the_position_cap() -> None:
    # stop 2 ATR = 200 below: volatility size 10,000 x 1 % / 200 = 0.5; Kelly (prior 0.5 / 1.5) = 1/6,
    # half of it: 10,000 x 0.0833 / 200 = 4.17; cap 10 % of 10,000 / 40,000 = 0.025 -> 0.025 wins
    verdict = assess(decision(DecisionAction.OPEN_LONG), signal(), context(), MODERATE)
    assert verdict.approved and verdict.side is Side.BUY and verdict.quantity == pytest.approx(0.025)
    assert verdict.stop_price == pytest.approx(39_800.0)
    sizes = verdict.details["sizes"]
    assert verdict.details["binding"] == "max_position_size"
    assert sizes["volatility"] == pytest.approx(0.5) and sizes["kelly"] == pytest.approx(10_000 / 6 / 2 / 200)
    assert "bound by max_position_size" in verdict.reason


def test_a_wide_stop_makes_volatility_sizing_bind() -> None:
    # stop 4,000 below: 100 / 4,000 = 0.025 ... make it 8,000: 0.0125 < cap 0.025
    verdict = assess(decision(DecisionAction.OPEN_LONG, stop=32_000.0), signal(), context(), MODERATE)
    assert verdict.details["binding"] == "volatility" and verdict.quantity == pytest.approx(0.012)


def test_losing_streak_halves_then_quarters_risk_sizes() -> None:
    two = TradeStats.from_pnls([5.0, -1.0, -1.0])
    three = TradeStats.from_pnls([-1.0, -1.0, -1.0])
    assert (two.losses_in_a_row, streak_multiplier(two)) == (2, 0.5)
    assert streak_multiplier(three) == 0.25
    assert streak_multiplier(TradeStats.from_pnls([1.0, 1.0, 1.0])) == 1.25
    wide = decision(DecisionAction.OPEN_LONG, stop=32_000.0)
    base = assess(wide, signal(), context(), MODERATE).details["sizes"]["volatility"]
    reduced = assess(wide, signal(), context(stats=two), MODERATE).details["sizes"]["volatility"]
    assert reduced == pytest.approx(base / 2)


def test_kelly_shrinks_toward_the_prior_and_vetoes_a_negative_edge() -> None:
    losing = TradeStats.from_pnls([-10.0] * 60 + [5.0] * 20)  # win rate 0.25, payoff 0.5
    estimate = kelly(losing, MODERATE)
    assert estimate.weight == pytest.approx(80 / 110)
    assert estimate.win_rate == pytest.approx(80 / 110 * 0.25 + 30 / 110 * 0.5)
    assert estimate.fraction < 0
    verdict = assess(decision(DecisionAction.OPEN_LONG), signal(), context(stats=losing), MODERATE)
    assert not verdict.approved and "no edge" in verdict.reason


@pytest.mark.parametrize(
    ("overrides", "made", "reason"),
    [
        ({}, decision(DecisionAction.OPEN_LONG, confidence=0.5), "below MIN_CONFIDENCE"),
        ({}, decision(DecisionAction.OPEN_LONG, stop=39_000.0, tp=40_500.0), "reward/risk 0.50"),
        ({}, decision(DecisionAction.OPEN_LONG, stop=41_000.0), "wrong side"),
        ({"atr": None}, decision(DecisionAction.OPEN_LONG), "ATR is not known"),
        ({"trading_state": "HALTED", "state_reason": "kill"}, decision(DecisionAction.OPEN_LONG), "HALTED"),
        ({"blocked": "market data for BTC-PERP is stale"}, decision(DecisionAction.OPEN_LONG), "stale"),
        (
            {"other_notionals": {"ETH-PERP": 100.0, "SOL-PERP": 100.0, "XRP-PERP": -50.0}},
            decision(DecisionAction.OPEN_LONG),
            "MAX_OPEN_POSITIONS",
        ),
        ({}, decision(DecisionAction.OPEN_LONG, stop=20_000.0), "beyond the liquidation price"),
        ({"atr": 3_000.0}, decision(DecisionAction.OPEN_LONG, stop=39_000.0), "ATRs away"),
        ({"equity": 50.0, "free_collateral": 50.0}, decision(DecisionAction.OPEN_LONG), "below the minimum"),
    ],
)
def test_vetoes_name_their_rule(overrides: dict[str, object], made: Decision, reason: str) -> None:
    verdict = assess(made, signal(), context(**overrides), MODERATE)
    assert not verdict.approved and reason in verdict.reason


def test_signal_confidence_is_checked_too() -> None:
    verdict = assess(decision(DecisionAction.OPEN_LONG), signal(confidence=0.3), context(), MODERATE)
    assert not verdict.approved and "signal confidence 0.30" in verdict.reason


def test_close_hold_and_reversal() -> None:
    long = Position("BTC-PERP", 0.3, 39_000.0)
    close = assess(
        decision(DecisionAction.CLOSE), signal(SignalAction.CLOSE), context(position=long), MODERATE
    )
    assert close.approved and close.reduce_only and close.side is Side.SELL and close.quantity == 0.3
    assert close.exit_kind == "close_signal"
    held = assess(decision(DecisionAction.HOLD), signal(SignalAction.SELL), context(position=long), MODERATE)
    assert held.approved and held.reduce_only and held.exit_kind == "signal_reversed"
    off = replace(MODERATE, exit_on_reversal=False)
    assert not assess(
        decision(DecisionAction.HOLD), signal(SignalAction.SELL), context(position=long), off
    ).approved
    assert assess(decision(DecisionAction.CLOSE), signal(), context(), MODERATE).reason == "nothing to close"


def test_reducing_turns_a_flip_into_a_close() -> None:
    short = Position("BTC-PERP", -0.02, 41_000.0)
    verdict = assess(
        decision(DecisionAction.OPEN_LONG),
        signal(),
        context(position=short, trading_state="REDUCING"),
        MODERATE,
    )
    assert verdict.approved and verdict.reduce_only and verdict.quantity == pytest.approx(0.02)
    assert "close only" in verdict.reason


def test_correlated_positions_count_together() -> None:
    correlation = {"BTC-PERP": {"ETH-PERP": 0.9}, "ETH-PERP": {"BTC-PERP": 0.9}}
    # ETH long of 1,400 already: the group may hold 15 % of 10,000 = 1,500 -> 100 left -> 0.0025 BTC
    verdict = assess(
        decision(DecisionAction.OPEN_LONG), signal(),
        context(other_notionals={"ETH-PERP": 1_400.0}, correlation=correlation), MODERATE,
    )  # fmt: skip
    assert verdict.details["binding"] == "correlated_exposure" and verdict.quantity == pytest.approx(0.002)
    short = assess(
        decision(DecisionAction.OPEN_SHORT), signal(SignalAction.SELL),
        context(other_notionals={"ETH-PERP": 1_400.0}, correlation=correlation), MODERATE,
    )  # fmt: skip
    assert short.quantity == pytest.approx(0.025)  # a short offsets the correlated long: not bound


# --- invariants ---------------------------------------------------------------------------------------------
tolerances = st.sampled_from(sorted(PRESETS))
prices = st.floats(100, 100_000)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Decision, Signal, RiskContext, RiskPolicy]:
    """Any decision the schema accepts and any account, weighted toward entries that could pass."""
    price = draw(prices)
    action = draw(
        st.sampled_from([DecisionAction.OPEN_LONG, DecisionAction.OPEN_SHORT] * 3 + list(DecisionAction))
    )
    sign = -1 if action is DecisionAction.OPEN_SHORT else 1
    wrong = draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())  # 1 in 8: wrong-side levels
    stop_distance = draw(st.one_of(st.none(), st.floats(1e-3, 0.3)))
    target_distance = draw(st.one_of(st.none(), st.floats(1e-3, 1.0)))
    made = Decision(
        action, draw(st.floats(0.4, 1)), "property", "rules",
        stop_loss=price * (1 - sign * stop_distance * (-1 if wrong else 1)) if stop_distance else None,
        take_profit=price * (1 + sign * target_distance) if target_distance else None,
    )  # fmt: skip
    equity = draw(st.floats(10, 1e7))
    held = draw(st.one_of(st.just(0), st.integers(-5000, 5000))) * 0.001  # on the quantity step
    others = draw(
        st.dictionaries(st.sampled_from(["ETH-PERP", "SOL-PERP"]), st.floats(-1e6, 1e6), max_size=2)
    )
    ctx = RiskContext(
        symbol="BTC-PERP", price=price, position=Position("BTC-PERP", held, price), equity=equity,
        free_collateral=draw(st.floats(0, equity)), other_notionals=others,
        atr=draw(st.one_of(st.none(), st.floats(price * 1e-4, price * 0.02))),
        trading_state=draw(st.sampled_from(["ACTIVE", "ACTIVE", "REDUCING", "HALTED"])),
        stats=TradeStats.from_pnls(draw(st.lists(st.floats(-100, 150), max_size=40))),
    )  # fmt: skip
    signal_action = draw(st.sampled_from(list(SignalAction)))
    return made, Signal("k", "test", "BTC-PERP", signal_action), ctx, PRESETS[draw(tolerances)]


def opening_quantity(verdict_quantity: float, side: Side | None, held: float) -> float:
    """The part of an order that opens new exposure (beyond closing the current position)."""
    if side is None:
        return 0.0
    signed = side.sign * verdict_quantity
    if held * signed >= 0:
        return verdict_quantity
    return max(verdict_quantity - abs(held), 0.0)


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_an_approved_order_never_exceeds_a_cap_nor_grows_exposure_unless_active(
    scenario: tuple[Decision, Signal, RiskContext, RiskPolicy],
) -> None:
    made, sig, ctx, policy = scenario
    verdict = assess(made, sig, ctx, policy)
    if not verdict.approved:
        assert verdict.quantity == 0.0
        return
    held = ctx.position.quantity
    after = held + (verdict.side.sign if verdict.side else 0) * verdict.quantity
    opening = opening_quantity(verdict.quantity, verdict.side, held)
    if verdict.reduce_only or ctx.trading_state != "ACTIVE":
        assert abs(after) <= abs(held) + 1e-9  # REDUCING and HALTED never increase exposure
        assert opening <= 1e-9
        return
    notional = opening * ctx.price
    leverage = min(policy.order_leverage, ctx.market_max_leverage)
    released = abs(held) * ctx.price / leverage
    assert opening >= MIN_QUANTITY - 1e-9
    assert notional <= ctx.equity * policy.max_position_size * (1 + 1e-9)
    assert notional / leverage <= (ctx.free_collateral + released) * (1 + 1e-9)
    others = sum(abs(v) for v in ctx.other_notionals.values())
    assert notional + others <= max(ctx.equity * policy.max_total_exposure, others) * (1 + 1e-9) + 1e-6
    assert made.confidence >= policy.min_confidence
    assert verdict.stop_price is None or (ctx.price - verdict.stop_price) * verdict.side.sign > 0  # type: ignore[union-attr]


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.floats(1.01, 10))
def test_size_is_monotone_in_equity(
    scenario: tuple[Decision, Signal, RiskContext, RiskPolicy], more: float
) -> None:
    made, sig, ctx, policy = scenario
    small = assess(made, sig, ctx, policy)
    large = assess(
        made, sig, replace(ctx, equity=ctx.equity * more, free_collateral=ctx.free_collateral * more), policy
    )
    if small.approved and not small.reduce_only:
        assert large.approved and large.quantity >= small.quantity - 1e-9


@settings(max_examples=300, deadline=None)
@given(prices, st.floats(0.001, 0.2), st.floats(1.01, 5), st.floats(1_000, 1e6), tolerances)
def test_size_never_grows_with_a_wider_stop(
    price: float, stop_fraction: float, wider: float, equity: float, tolerance: str
) -> None:
    policy = PRESETS[tolerance]
    ctx = context(price=price, equity=equity, free_collateral=equity, atr=price * 0.001)
    near = assess(decision(DecisionAction.OPEN_LONG, stop=price * (1 - stop_fraction)), signal(), ctx, policy)
    far_stop = price * (1 - min(stop_fraction * wider, 0.99))
    far = assess(decision(DecisionAction.OPEN_LONG, stop=far_stop), signal(), ctx, policy)
    assert far.quantity <= near.quantity + 1e-9  # a veto has quantity 0
