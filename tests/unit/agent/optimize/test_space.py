"""``--param`` specs: every rule named with its parameter; valid ranges give dimensions Optuna searches
within."""

from __future__ import annotations

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.optimize.space import Dimension, parse_space, split_values
from agent.strategies.builtin import RsiDivergence, SrBreakVolume
from shared.errors import InvalidInput


def problems(specs: list[str], strategy: type = RsiDivergence) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_space(specs, strategy)
    return {p.field: p.message for p in caught.value.problems}


def test_a_valid_space_has_the_types_of_the_strategy_and_the_settings() -> None:
    space = parse_space(
        ["lookback=10:40", "stop_atr=1:3.5", "oversold_zone=30,40", "RISK_PER_TRADE=0.005:0.02",
         "RISK_TOLERANCE=conservative,moderate", "MAX_OPEN_POSITIONS=1:4"],
        RsiDivergence,
    )  # fmt: skip
    by_name = {d.name: d for d in space}
    assert by_name["lookback"] == Dimension("lookback", "int", 10, 40)
    assert by_name["stop_atr"] == Dimension("stop_atr", "float", 1.0, 3.5)
    assert by_name["oversold_zone"] == Dimension("oversold_zone", "choice", choices=(30.0, 40.0))
    assert by_name["RISK_PER_TRADE"].kind == "float"
    assert by_name["RISK_TOLERANCE"].choices == ("conservative", "moderate")
    assert by_name["MAX_OPEN_POSITIONS"].kind == "int"
    assert split_values({"lookback": 3, "RISK_PER_TRADE": 0.01}) == (
        {"lookback": 3},
        {"RISK_PER_TRADE": 0.01},
    )


def test_each_broken_rule_names_the_parameter_and_the_rule() -> None:
    found = problems(
        ["fast=5:30", "lookback=40:10", "stop_atr=0.1:3", "lookback2", "oversold_zone=abc:3",
         "RISK_PER_TRADE=0.01:0.5", "NOT_A_SETTING=1:2", "STRATEGIES=a,b"],
    )  # fmt: skip
    assert "has no parameter 'fast' (known: lookback, oversold_zone, stop_atr)" in found["--param fast"]
    assert "low 40 must be below high 10" in found["--param lookback"]
    assert "outside rsi_divergence.stop_atr's declared bounds [0.5, 10.0]" in found["--param stop_atr"]
    assert "'lookback2' must look like NAME=LOW:HIGH" in found["--param"]
    assert "must be a number, got 'abc'" in found["--param oversold_zone"]
    assert "RISK_PER_TRADE" in found["--param RISK_PER_TRADE"] and "0.5" in found["--param RISK_PER_TRADE"]
    assert "is not a setting" in found["--param NOT_A_SETTING"]
    assert "set by the optimiser itself" in found["--param STRATEGIES"]


def test_integers_for_an_int_parameter_and_no_duplicates_or_empty_space() -> None:
    assert "must be an integer, got '10.5'" in problems(["lookback=10.5:20"])["--param lookback"]
    assert problems(["lookback=10:20", "lookback=20:30"])["--param lookback"] == "given twice"
    assert "give at least one parameter" in problems([])["--param"]
    assert "within [5, 60]" in problems(["lookback=3,10"])["--param lookback"]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_suggestions_stay_within_the_ranges(data: st.DataObject) -> None:
    low = data.draw(st.integers(10, 99), label="low")
    high = data.draw(st.integers(low + 1, 100), label="high")
    ratio_low = data.draw(st.floats(1.0, 9.0), label="ratio_low")
    ratio_high = data.draw(st.floats(ratio_low + 0.01, 10.0), label="ratio_high")
    space = parse_space(
        [f"lookback={low}:{high}", f"volume_ratio={ratio_low!r}:{ratio_high!r}"], SrBreakVolume
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=data.draw(st.integers(0, 99))))
    trial = study.ask()
    values = {d.name: d.suggest(trial) for d in space}
    assert isinstance(values["lookback"], int) and low <= values["lookback"] <= high
    assert ratio_low <= values["volume_ratio"] <= ratio_high
    SrBreakVolume(**values)  # always a valid instance of the strategy
