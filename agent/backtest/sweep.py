"""Parameter sweeps: one backtest per point of a grid, in parallel processes, ranked, with a warning when
the best result looks like overfitting.

``--sweep KEY=V1,V2,...`` (repeatable) makes the grid (every combination). Each run writes its own report
under ``OUT/runs/<n>``; ``OUT/sweep.json`` lists every run's parameters and key metrics, best first by the
rank metric (runs where it is undefined rank last). The warning: with at least four runs, when the best is
more than two standard deviations above the others' mean (an outlier: its neighbours do not share its
luck), or when it rests on fewer than 30 trades.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent.backtest.run import BacktestRequest, run_backtest
from shared.errors import FieldProblem, InvalidInput

MIN_TRUSTED_TRADES = 30


def parse_grid(specs: Sequence[str]) -> list[dict[str, str]]:
    """``["A=1,2", "B=x,y"]`` -> every combination as a dict of overrides; InvalidInput on a bad spec."""
    axes: list[tuple[str, list[str]]] = []
    problems = []
    for spec in specs:
        key, _, values = spec.partition("=")
        options = [v.strip() for v in values.split(",") if v.strip()]
        if not key.strip() or not options:
            problems.append(FieldProblem("--sweep", f"{spec!r} must look like KEY=V1,V2"))
        else:
            axes.append((key.strip().upper(), options))
    if problems:
        raise InvalidInput(problems)
    return [
        dict(zip([k for k, _ in axes], combo, strict=True))
        for combo in itertools.product(*(v for _, v in axes))
    ]


@dataclass(frozen=True)
class SweepRun:
    number: int
    parameters: dict[str, str]
    metrics: dict[str, Any]


def _one(job: tuple[int, BacktestRequest, dict[str, str], Path]) -> SweepRun:
    number, request, parameters, out = job
    run = replace(request, overrides={**request.overrides, **parameters}, progress=False)
    result = run_backtest(run, out / "runs" / str(number))
    return SweepRun(number, parameters, result.metrics.as_dict())


def rank(runs: Sequence[SweepRun], metric: str) -> list[SweepRun]:
    def key(run: SweepRun) -> tuple[int, float, int]:
        value = run.metrics.get(metric)
        return (0, -float(value), run.number) if isinstance(value, int | float) else (1, 0.0, run.number)

    return sorted(runs, key=key)


def overfitting_warning(ranked: Sequence[SweepRun], metric: str) -> str:
    """Why the best run should not be trusted as it is ("" when nothing looks wrong)."""
    if not ranked:
        return ""
    best = ranked[0]
    trades = best.metrics.get("trade_count") or 0
    if trades < MIN_TRUSTED_TRADES:
        return f"the best run rests on {trades} trades (< {MIN_TRUSTED_TRADES}): too few to trust"
    others = [r.metrics.get(metric) for r in ranked[1:]]
    values = [float(v) for v in others if isinstance(v, int | float)]
    top = best.metrics.get(metric)
    if len(values) >= 3 and isinstance(top, int | float):
        mean, spread = statistics.fmean(values), statistics.pstdev(values)
        if spread > 0 and (top - mean) / spread > 2:
            z = (top - mean) / spread
            return (
                f"the best {metric} ({top:.3g}) is an outlier, {z:.1f} standard deviations above the other "
                f"runs' mean ({mean:.3g}): likely overfit; prefer parameters whose neighbours also do well"
            )
    return ""


def run_sweep(
    request: BacktestRequest, grid: Sequence[Mapping[str, str]], out: Path, metric: str, jobs: int = 0
) -> tuple[list[SweepRun], str]:
    workers = max(1, min(jobs or os.cpu_count() or 1, len(grid)))
    work = [(n, request, dict(parameters), out) for n, parameters in enumerate(grid, start=1)]
    if workers == 1:
        runs = [_one(job) for job in work]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(_one, work))
    ranked = rank(runs, metric)
    warning = overfitting_warning(ranked, metric)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "rank_by": metric,
        "warning": warning or None,
        "runs": [{"run": r.number, "parameters": r.parameters, **_key_metrics(r.metrics)} for r in ranked],
    }
    (out / "sweep.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return ranked, warning


KEY_METRICS = (
    "total_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "trade_count",
)


def _key_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in KEY_METRICS}


def sweep_table(ranked: Sequence[SweepRun], metric: str) -> str:
    header = ["rank", "run", "parameters", *KEY_METRICS]
    rows = [header]
    for place, run in enumerate(ranked, start=1):
        params = " ".join(f"{k}={v}" for k, v in run.parameters.items())
        values = [_cell(run.metrics.get(k)) for k in KEY_METRICS]
        rows.append([str(place), str(run.number), params, *values])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return f"ranked by {metric}\n" + "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
