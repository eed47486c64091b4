"""The objectives: metrics of a backtest with the direction that makes each better."""

from __future__ import annotations

import pandas as pd
import pytest

from agent.analytics.performance import compute_metrics
from agent.backtest.run import BacktestResult
from agent.optimize.objectives import OBJECTIVES, objective_named
from shared.errors import InvalidInput


def result(values: list[float]) -> BacktestResult:
    equity = pd.Series(values, index=pd.date_range("2022-01-01", periods=len(values), freq="D", tz="UTC"))
    metrics = compute_metrics(equity, [], starting_equity=values[0])
    return BacktestResult(
        metrics, equity, [], equity, {}, len(values), 0, arena={"pnl_net_of_llm_cost": 12.5}
    )


def test_directions() -> None:
    assert objective_named("max_drawdown").direction == "minimize"
    assert {o.direction for n, o in OBJECTIVES.items() if n != "max_drawdown"} == {"maximize"}
    assert objective_named("sharpe").better(1.0, 0.5)
    assert objective_named("max_drawdown").better(0.05, 0.10)
    assert not objective_named("max_drawdown").better(0.10, 0.05)


def test_values_come_from_the_report() -> None:
    run = result([100.0, 110.0, 99.0, 104.5])
    assert objective_named("return_pct").value(run) == pytest.approx(4.5)
    assert objective_named("max_drawdown").value(run) == pytest.approx(0.1)  # 110 -> 99: a 10 % fall
    assert objective_named("pnl_net_of_llm_cost").value(run) == 12.5
    assert objective_named("sharpe").value(run) == run.metrics.sharpe
    assert objective_named("profit_factor").value(run) is None  # no trades: undefined, never invented


def test_an_unknown_metric_lists_the_choices() -> None:
    with pytest.raises(InvalidInput) as caught:
        objective_named("profit")
    message = caught.value.problems[0].message
    assert caught.value.problems[0].field == "--objective"
    assert "unknown metric 'profit'" in message
    assert "sharpe (maximize)" in message and "max_drawdown (minimize)" in message


def test_an_undefined_objective_fails_the_trial_with_the_reason() -> None:
    from agent.optimize.objectives import UndefinedObjective
    from agent.optimize.study import score

    run = result([100.0, 101.0, 102.0])
    assert score(objective_named("return_pct"), run, "in fold 1") == pytest.approx(2.0)
    with pytest.raises(UndefinedObjective, match=r"profit_factor is undefined in fold 2 \(0 trades\)"):
        score(objective_named("profit_factor"), run, "in fold 2")
