"""Sizing counts the taker fee on the entry and on the stop's exit, and the slippage of both: the loss at the
stop is at most RISK_PER_TRADE of equity, and not needlessly less."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.risk.presets import PRESETS
from agent.risk.sizing import SizingInputs, loss_per_unit, size_position

# every cap out of the way, Kelly off: the volatility rule binds
POLICY = replace(
    PRESETS["moderate"], max_position_size=1e12, max_total_exposure=1e12, max_correlated_exposure=1e12,
    kelly_fraction=0.0,
)  # fmt: skip


def inputs(equity: float, price: float, distance: float, direction: int, fee: float, slip: float,
           step: float = 1e-9) -> SizingInputs:  # fmt: skip
    return SizingInputs(
        equity=equity, free_collateral=1e15, price=price, stop_distance=distance, leverage=20.0,
        other_gross_notional=0.0, correlated_net=0.0, kelly_fraction=0.0, streak=1.0, step=step,
        direction=direction, taker_fee=fee, slippage_bps=slip,
    )  # fmt: skip


def simulated_loss(
    quantity: float, price: float, distance: float, direction: int, fee: float, slip: float
) -> float:
    """The paper exchange's fills: a market entry pays the slippage on the price, the stop-market exit fills
    as much worse than its trigger, each pays the taker fee on its own notional."""
    s = slip / 10_000
    stop = price - direction * distance
    entry_fill = price * (1 + direction * s)
    exit_fill = stop * (1 - direction * s)
    price_loss = direction * (entry_fill - exit_fill) * quantity
    return price_loss + fee * entry_fill * quantity + fee * exit_fill * quantity


def test_the_hand_calculated_two_percent_stop() -> None:
    """Long at 100, stop 98, taker 0.05 %, slippage 2 bps: a unit loses 100 x 1.0002 x 1.0005 - 98 x 0.9998 x
    0.9995 = 100.07001 - 97.9314098 = 2.1386002, 6.93 % more than the 2 of the stop distance alone. With
    equity 10,000 and RISK_PER_TRADE 1 %: 100 / 2.1386002 = 46.7595... units (46.759 at a 0.001 step), not 50."""
    policy = replace(POLICY, risk_per_trade=0.01)
    assert loss_per_unit(100.0, 2.0, 1, 0.0005, 2.0) == pytest.approx(2.1386002)
    size = size_position(inputs(10_000.0, 100.0, 2.0, 1, 0.0005, 2.0, step=0.001), policy)
    assert size.binding == "volatility" and size.quantity == pytest.approx(46.759)
    assert simulated_loss(size.quantity, 100.0, 2.0, 1, 0.0005, 2.0) <= 100.0
    # a short's stop is above: 102 x 1.0002 x 1.0005 - 100 x 0.9998 x 0.9995 = 102.0714102 - 99.93001 = 2.1414002
    assert loss_per_unit(100.0, 2.0, -1, 0.0005, 2.0) == pytest.approx(2.1414002)
    # without fees and slippage the loss per unit is the stop distance, as before
    assert loss_per_unit(100.0, 2.0, 1, 0.0, 0.0) == 2.0


@settings(max_examples=300, deadline=None)
@given(
    equity=st.floats(100.0, 1e8),
    price=st.floats(0.01, 200_000.0),
    stop_pct=st.floats(0.001, 0.10),
    direction=st.sampled_from([1, -1]),
    fee=st.floats(0.0, 0.002),
    slip=st.floats(0.0, 50.0),
    risk=st.floats(0.001, 0.05),
)
def test_the_loss_at_the_stop_is_at_most_risk_per_trade_and_not_much_less(
    equity: float, price: float, stop_pct: float, direction: int, fee: float, slip: float, risk: float
) -> None:
    policy = replace(POLICY, risk_per_trade=risk)
    distance = price * stop_pct
    size = size_position(inputs(equity, price, distance, direction, fee, slip), policy)
    budget = risk * equity
    loss = simulated_loss(size.quantity, price, distance, direction, fee, slip)
    assert loss <= budget * (1 + 1e-9)
    assert size.binding == "volatility"
    bound = budget / simulated_loss(
        1.0, price, distance, direction, fee, slip
    )  # the largest quantity allowed
    assert size.quantity >= 0.99 * bound - 1e-9  # only the step's rounding below it


@settings(max_examples=100, deadline=None)
@given(equity=st.floats(1_000.0, 1e6), stop_pct=st.floats(0.001, 0.10), cap=st.floats(0.01, 5.0))
def test_a_cap_that_binds_still_keeps_the_loss_within_risk(
    equity: float, stop_pct: float, cap: float
) -> None:
    policy = replace(POLICY, risk_per_trade=0.01, max_position_size=cap)
    price = 40_000.0
    size = size_position(inputs(equity, price, price * stop_pct, 1, 0.0005, 2.0), policy)
    assert simulated_loss(size.quantity, price, price * stop_pct, 1, 0.0005, 2.0) <= 0.01 * equity * (
        1 + 1e-9
    )
    assert size.quantity <= equity * cap / price + 1e-9
