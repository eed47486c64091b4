"""The rules of a trader's manual actions (agent.engine.position_actions): close fractions on the market's
step and minimum, stops only on the protective side and only towards the price."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.engine.position_actions import (
    ActionInputError,
    ActionRefused,
    check_stop,
    client_id_for,
    close_quantity,
)
from shared.exchange.markets import load_market_specs
from shared.models import Side

BTC = load_market_specs().get("BTC-PERP")  # step 0.001, minimum 0.001
STEP, SMALLEST = float(BTC.step_size), float(BTC.min_quantity)


@pytest.mark.parametrize("fraction", [0, -0.5, 1.01, math.nan, "half", True, None])
def test_a_fraction_outside_0_1_is_invalid_input_naming_the_field(fraction: object) -> None:
    with pytest.raises(ActionInputError) as error:
        close_quantity(0.01, fraction, BTC)
    assert error.value.details() == [{"field": "fraction", "message": "must be a number in (0, 1]"}]


def test_the_whole_position_at_one_and_half_rounded_down_to_the_step() -> None:
    assert close_quantity(-0.013, 1, BTC) == 0.013
    assert close_quantity(0.013, 0.5, BTC) == 0.006


def test_a_reduction_below_the_minimum_or_leaving_dust_is_refused() -> None:
    with pytest.raises(ActionRefused, match="below the market's minimum") as small:
        close_quantity(0.003, 0.2, BTC)  # 0.0006 rounds to 0
    assert small.value.rule == "min_quantity"
    sui = load_market_specs().get("SUI-PERP")  # step 1: 1.5 of 3 is 1, leaves 2; fine
    assert close_quantity(3, 0.5, sui) == 1


@given(
    held=st.integers(min_value=1, max_value=100_000).map(lambda n: n * STEP),
    fraction=st.floats(min_value=1e-6, max_value=1.0),
    short=st.booleans(),
)
def test_a_close_is_on_the_step_never_more_than_held_and_never_leaves_dust(
    held: float, fraction: float, short: bool
) -> None:
    position = -held if short else held
    try:
        quantity = close_quantity(position, fraction, BTC)
    except ActionRefused as refused:
        assert refused.rule == "min_quantity"
        assert (
            held * fraction < SMALLEST + STEP or held - math.floor(held * fraction / STEP) * STEP < SMALLEST
        )
        return
    assert 0 < quantity <= held + 1e-12
    assert BTC.on_step(quantity)
    assert quantity >= SMALLEST
    left = held - quantity
    assert left < 1e-9 or left >= SMALLEST - 1e-9
    assert fraction == 1 or quantity <= held * fraction + 1e-9


def test_a_stop_on_the_wrong_side_of_the_mark_is_refused() -> None:
    with pytest.raises(ActionRefused, match="below the mark price") as long:
        check_stop(Side.BUY, 101.0, mark=100.0, close=100.0, current=90.0)
    assert long.value.rule == "stop_side"
    with pytest.raises(ActionRefused, match="above the latest close") as short:
        check_stop(Side.SELL, 101.0, mark=100.0, close=102.0, current=110.0)
    assert short.value.rule == "stop_side"


def test_a_stop_that_widens_the_risk_is_refused_and_tightening_passes() -> None:
    with pytest.raises(ActionRefused, match="widens the risk") as wide:
        check_stop(Side.BUY, 85.0, mark=100.0, close=100.0, current=90.0)
    assert wide.value.rule == "stop_widening"
    assert check_stop(Side.BUY, 95, mark=100.0, close=100.0, current=90.0) == 95.0
    assert check_stop(Side.SELL, 105.0, mark=100.0, close=100.0, current=110.0) == 105.0
    assert check_stop(Side.SELL, 120.0, mark=100.0, close=100.0, current=None) == 120.0


@pytest.mark.parametrize("price", [0, -1, "x", None, math.nan])
def test_a_stop_price_must_be_a_positive_number(price: object) -> None:
    with pytest.raises(ActionInputError) as error:
        check_stop(Side.BUY, price, 100.0, 100.0, 90.0)
    assert error.value.details()[0]["field"] == "price"


@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    mark=st.floats(min_value=1, max_value=1e6),
    current_gap=st.floats(min_value=0.001, max_value=0.5),
    new=st.floats(min_value=0.01, max_value=2e6),
)
def test_an_accepted_stop_is_protective_and_never_further_than_the_current(
    side: Side, mark: float, current_gap: float, new: float
) -> None:
    sign = 1 if side is Side.BUY else -1
    current = mark * (1 - sign * current_gap)
    try:
        stop = check_stop(side, new, mark, mark, current)
    except ActionRefused as refused:
        assert refused.rule in ("stop_side", "stop_widening")
        return
    assert (mark - stop) * sign > 0  # protective
    assert (stop - current) * sign >= -1e-9  # at or tighter than the current stop


def test_the_same_request_makes_the_same_client_id() -> None:
    first = client_id_for("close", "BTC-PERP", "abc")
    assert first == client_id_for("close", "BTC-PERP", "abc") and first.startswith("bfa-")
    assert len(first) == len("bfa-") + 32
    assert first != client_id_for("close", "BTC-PERP", "abd")
