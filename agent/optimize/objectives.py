"""What ``bluefinai optimize --objective`` can optimise: metrics of a backtest's report, each with the
direction that makes it better.

``max_drawdown`` is the depth of the deepest fall as a positive fraction (0.12 = 12 %, the report's
``max_drawdown`` is the same number negated) and is minimised; every other objective is maximised. A metric
can be undefined for a run (Sharpe without two daily returns, profit factor without a losing trade ...):
the trial then fails (``UndefinedObjective``) rather than being scored by an invented number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from agent.backtest.run import BacktestResult
from shared.errors import BluefinAIError, FieldProblem, InvalidInput

Direction = Literal["maximize", "minimize"]


class UndefinedObjective(BluefinAIError):
    """The objective has no value for this run (e.g. no trades): the trial fails."""


@dataclass(frozen=True)
class Objective:
    name: str
    direction: Direction
    description: str
    measure: Callable[[BacktestResult], float | None]

    def value(self, result: BacktestResult) -> float | None:
        value = self.measure(result)
        return None if value is None else float(value)

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.direction == "maximize" else a < b


def _metric(name: str) -> Callable[[BacktestResult], float | None]:
    def measure(result: BacktestResult) -> float | None:
        value = getattr(result.metrics, name)
        return None if value is None else float(value)

    return measure


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("return_pct", "maximize", "total return in %", lambda r: r.metrics.total_return * 100),
        Objective("sharpe", "maximize", "daily Sharpe ratio, annualised", _metric("sharpe")),
        Objective("sortino", "maximize", "daily Sortino ratio, annualised", _metric("sortino")),
        Objective("cagr", "maximize", "compound annual growth rate", _metric("cagr")),
        Objective("profit_factor", "maximize", "gross profit / gross loss", _metric("profit_factor")),
        Objective("expectancy_r", "maximize", "mean R multiple per trade", _metric("expectancy_r")),
        Objective("expectancy_usd", "maximize", "mean PnL per trade in USD", _metric("expectancy_usd")),
        Objective("r_total", "maximize", "total PnL / total initial risk", _metric("r_total")),
        Objective("win_rate", "maximize", "winning trades / trades", _metric("win_rate")),
        Objective(
            "pnl_net_of_llm_cost",
            "maximize",
            "PnL in USD less the LLM calls' cost",
            lambda r: float(r.arena["pnl_net_of_llm_cost"]) if "pnl_net_of_llm_cost" in r.arena else None,
        ),
        Objective(
            "max_drawdown", "minimize", "deepest fall, a positive fraction", lambda r: -r.metrics.max_drawdown
        ),
    )
}


def objective_named(name: str) -> Objective:
    """The objective called ``name``; InvalidInput listing the choices when there is none."""
    if name not in OBJECTIVES:
        choices = ", ".join(f"{o.name} ({o.direction})" for o in OBJECTIVES.values())
        raise InvalidInput([FieldProblem("--objective", f"unknown metric {name!r}; choose one of {choices}")])
    return OBJECTIVES[name]
