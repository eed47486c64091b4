"""STRATEGY_PARAMS: strategy parameters without code, typed and checked against each strategy's own
declarations, every problem on one line naming the variable or the parameter."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.strategies.loader import load_strategies
from agent.wiring import build_strategies
from shared.config import load_settings
from shared.errors import ConfigError


def test_params_reach_the_instances_and_the_rest_keep_their_defaults() -> None:
    loaded = build_strategies(
        load_settings(
            strategies="rsi_divergence,bb_squeeze",
            strategy_params="rsi_divergence.lookback=30,rsi_divergence.stop_atr=2.5",
        )
    )
    by_name = {s.name: s for s in loaded}
    assert by_name["rsi_divergence"].p == {"lookback": 30, "oversold_zone": 40.0, "stop_atr": 2.5}
    assert isinstance(by_name["rsi_divergence"].p["lookback"], int)
    assert by_name["bb_squeeze"].p == {"lookback": 100}


def test_bad_params_stop_the_start_naming_the_rule() -> None:
    with pytest.raises(ConfigError) as caught:
        build_strategies(
            load_settings(
                strategies="rsi_divergence",
                strategy_params="rsi_divergence.lookback=2.5,rsi_divergence.fast=3,rsi_divergence.stop_atr=99,"
                "sma_cross.x=1",
            )
        )
    line = caught.value.problems[0]
    assert line.startswith("STRATEGIES: ")
    assert "rsi_divergence.lookback: must be an integer, got '2.5'" in line
    assert "rsi_divergence.fast: unknown parameter (known: lookback, oversold_zone, stop_atr)" in line
    assert "rsi_divergence.stop_atr: must be within [0.5, 10.0], got 99.0" in line
    assert "STRATEGY_PARAMS: sma_cross is not a strategy of STRATEGIES (rsi_divergence)" in line


def test_the_setting_refuses_a_malformed_entry() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(strategy_params="lookback=3")
    assert any("STRATEGY_PARAMS" in p and "strategy.param=value" in p for p in caught.value.problems)
    with pytest.raises(ConfigError) as twice:
        load_settings(strategy_params="a.b=1,a.b=2")
    assert any("a.b given twice" in p for p in twice.value.problems)


@settings(max_examples=30, deadline=None)
@given(lookback=st.integers(20, 120))
def test_any_value_within_bounds_round_trips(lookback: int) -> None:
    (strategy,) = load_strategies(("bb_squeeze",), (f"bb_squeeze.lookback={lookback}",))
    assert strategy.p["lookback"] == lookback
