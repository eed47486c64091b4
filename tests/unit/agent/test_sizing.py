from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.risk.sizing import MIN_QUANTITY, PRESET_FRACTION, RiskLimits, assess
from shared.models import Decision, DecisionAction, Position, Side

FLAT = Position("BTC-PERP", 0.0, 0.0)
LIMITS = RiskLimits(max_position_size=0.1, risk_tolerance="moderate", leverage=3)


def decision(action: DecisionAction) -> Decision:
    return Decision(action, 0.7, "test", "rules")


def test_hand_computed_size() -> None:
    verdict = assess(decision(DecisionAction.OPEN_LONG), FLAT, 10_000.0, 40_000.0, LIMITS)
    # 10 % of 10,000 = 1,000 notional / 40,000 = 0.025 BTC
    assert verdict.approved and verdict.side is Side.BUY and verdict.quantity == pytest.approx(0.025)


def test_max_position_size_caps_the_preset() -> None:
    limits = RiskLimits(max_position_size=0.02, risk_tolerance="aggressive", leverage=3)
    verdict = assess(decision(DecisionAction.OPEN_SHORT), FLAT, 10_000.0, 40_000.0, limits)
    assert verdict.quantity == pytest.approx(0.005)


def test_vetoes() -> None:
    assert not assess(decision(DecisionAction.HOLD), FLAT, 10_000, 40_000, LIMITS).approved
    assert assess(decision(DecisionAction.CLOSE), FLAT, 10_000, 40_000, LIMITS).reason == "nothing to close"
    long = Position("BTC-PERP", 0.02, 39_000)
    assert "already long" in assess(decision(DecisionAction.OPEN_LONG), long, 10_000, 40_000, LIMITS).reason
    tiny = assess(decision(DecisionAction.OPEN_LONG), FLAT, 100.0, 40_000, LIMITS)
    assert not tiny.approved and "below the minimum" in tiny.reason


def test_close_is_reduce_only_for_the_whole_position() -> None:
    verdict = assess(
        decision(DecisionAction.CLOSE), Position("BTC-PERP", -0.3, 41_000), 10_000, 40_000, LIMITS
    )
    assert verdict.approved and verdict.reduce_only and verdict.side is Side.BUY and verdict.quantity == 0.3


@given(
    equity=st.floats(1, 1e7),
    price=st.floats(1, 1e6),
    cap=st.floats(0.001, 1),
    tolerance=st.sampled_from(sorted(PRESET_FRACTION)),
    action=st.sampled_from([DecisionAction.OPEN_LONG, DecisionAction.OPEN_SHORT]),
)
def test_approved_entries_never_exceed_the_cap(
    equity: float, price: float, cap: float, tolerance: str, action: DecisionAction
) -> None:
    limits = RiskLimits(cap, tolerance, 3)
    verdict = assess(decision(action), FLAT, equity, price, limits)
    if verdict.approved:
        assert verdict.quantity >= MIN_QUANTITY
        assert verdict.quantity * price <= equity * min(cap, PRESET_FRACTION[tolerance]) * (1 + 1e-9)
        larger = assess(decision(action), FLAT, equity * 2, price, limits)
        assert larger.quantity >= verdict.quantity  # monotone in equity
