"""Past backtests on disk: every folder under BACKTEST_DIR holding a ``report.json`` is a run.

``find_runs`` lists them newest first with their headline figures, ``resolve`` finds one by folder name (or
path), ``load_metrics`` reads a run's metrics back, and ``compare_rows`` puts two runs' key metrics side by
side (the same rows as the terminal table and report.html)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.analytics.performance import PerformanceMetrics
from agent.backtest.report import metric_rows
from shared.errors import FieldProblem, InvalidInput

REPORT = "report.json"


@dataclass(frozen=True)
class RunSummary:
    name: str
    path: Path
    created: datetime  # when report.json was written
    start: str | None
    end: str | None
    trades: int
    total_return: float | None
    max_drawdown: float | None
    sharpe: float | None
    final_equity: float | None
    sweep: bool  # a sweep's folder: sweep.json beside one run per grid point

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "created": self.created.isoformat(timespec="seconds"), "start": self.start,
            "end": self.end, "trades": self.trades, "total_return": self.total_return,
            "max_drawdown": self.max_drawdown, "sharpe": self.sharpe, "final_equity": self.final_equity,
            "sweep": self.sweep,
        }  # fmt: skip


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / REPORT).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput([FieldProblem("run", f"{path / REPORT} cannot be read: {exc}")]) from None
    if not isinstance(data, dict):
        raise InvalidInput([FieldProblem("run", f"{path / REPORT} is not a report (not a JSON object)")])
    return data


def _summary(path: Path) -> RunSummary:
    data = _read(path)
    written = datetime.fromtimestamp((path / REPORT).stat().st_mtime, UTC)
    return RunSummary(
        name=path.name, path=path, created=written, start=data.get("start"), end=data.get("end"),
        trades=int(data.get("trade_count") or 0), total_return=data.get("total_return"),
        max_drawdown=data.get("max_drawdown"), sharpe=data.get("sharpe"),
        final_equity=data.get("final_equity"), sweep=(path / "sweep.json").exists(),
    )  # fmt: skip


def run_summary(path: Path) -> RunSummary:
    """One run's headline figures (InvalidInput when its report.json cannot be read)."""
    return _summary(path)


def find_runs(root: Path) -> list[RunSummary]:
    """The runs directly under ``root``, newest first (none when the folder does not exist yet)."""
    if not root.is_dir():
        return []
    runs = [_summary(folder) for folder in root.iterdir() if (folder / REPORT).is_file()]
    return sorted(runs, key=lambda run: (run.created, run.name), reverse=True)


def resolve(root: Path, run: str) -> Path:
    """A run by its folder name under ``root``, or by a path to its folder."""
    for candidate in (root / run, Path(run)):
        if candidate.name and (candidate / REPORT).is_file():
            return candidate
    known = ", ".join(r.name for r in find_runs(root)[:5]) or "none yet"
    raise InvalidInput([FieldProblem("run", f"no backtest {run!r} in {root} (newest: {known})")])


def load_metrics(path: Path) -> PerformanceMetrics:
    data = _read(path)
    names = [f.name for f in fields(PerformanceMetrics)]
    missing = [name for name in names if name not in data]
    if missing:
        raise InvalidInput([FieldProblem("run", f"{path / REPORT} lacks {', '.join(missing)}")])
    return PerformanceMetrics(**{name: data[name] for name in names})


def compare_rows(first: PerformanceMetrics, second: PerformanceMetrics) -> list[tuple[str, str, str]]:
    """(label, first's value, second's value) for every key metric, in the report's order."""
    return [(label, a, b) for (label, a), (_, b) in zip(metric_rows(first), metric_rows(second), strict=True)]
