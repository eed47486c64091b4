"""Every past run under BACKTEST_DIR as the dashboard shows it: backtests (a folder with ``report.json``,
``agent.backtest.library``) and optimisations (a folder with ``optimize.json`` and the best trial's
report in ``best/``), newest first, found only by a plain folder name (never a path: ``..``, ``/`` and
anything but letters, digits, ``.``, ``_`` and ``-`` is refused before the disk is touched).

optimize.json: ``{"kind": "optimize", "study", "objective", "direction", "n_trials", "best": {"number",
"params", "value", "command"}, "trials": [{"number", "state", "value", "params"}], "folds": [{"fold",
"in_sample", "out_of_sample", "train", "test"}], "overfitting_warning": str | null}``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.backtest.library import REPORT, compare_rows, load_metrics, run_summary
from shared.errors import FieldProblem, InvalidInput

OPTIMIZE = "optimize.json"
BEST = "best"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")
_REQUIRED = ("study", "objective", "direction", "n_trials", "best", "trials", "folds")


class UnknownRun(InvalidInput):
    """No run of that name, or it has no report (an API answers 404)."""


def run_folder(root: Path, name: str) -> Path:
    """The run ``name`` directly under ``root``: InvalidInput when the name is not a plain folder name or no
    run (backtest or optimisation) has it."""
    if not _NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidInput([FieldProblem("run", "must be the folder name of a run (letters, digits, . _ -)")])
    folder = root / name
    if folder.resolve().parent != root.resolve() or not (
        (folder / REPORT).is_file() or (folder / OPTIMIZE).is_file()
    ):
        raise UnknownRun([FieldProblem("run", f"no run {name!r} in BACKTEST_DIR")])
    return folder


def is_optimisation(folder: Path) -> bool:
    return (folder / OPTIMIZE).is_file()


def read_optimisation(folder: Path) -> dict[str, Any]:
    """optimize.json, checked for the keys the dashboard reads; ``best_report``: best/report.json exists."""
    try:
        data = json.loads((folder / OPTIMIZE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput([FieldProblem("run", f"{folder.name}/{OPTIMIZE} cannot be read: {exc}")]) from None
    missing = [key for key in _REQUIRED if not isinstance(data, dict) or key not in data]
    if missing:
        raise InvalidInput([FieldProblem("run", f"{folder.name}/{OPTIMIZE} lacks {', '.join(missing)}")])
    return {**data, "kind": "optimize", "best_report": (folder / BEST / REPORT).is_file()}


def _written(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _backtest_row(folder: Path, summary: dict[str, Any]) -> dict[str, Any]:
    try:
        report = json.loads((folder / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {}
    change = (report.get("breakdowns") or {}).get("market_change") or {}
    return {
        **summary, "kind": "backtest", "win_rate": report.get("win_rate"),
        "profit_factor": report.get("profit_factor"),
        "markets": sorted(report.get("by_symbol") or {}) or sorted(change),
        "market_change": {symbol: c.get("change") for symbol, c in change.items()},
    }  # fmt: skip


def _optimisation_row(folder: Path) -> dict[str, Any]:
    data = read_optimisation(folder)
    best = data["best"] if isinstance(data["best"], dict) else {}
    return {
        "kind": "optimize", "name": folder.name,
        "created": _written(folder / OPTIMIZE).isoformat(timespec="seconds"), "study": data["study"],
        "objective": data["objective"], "direction": data["direction"], "n_trials": data["n_trials"],
        "best_value": best.get("value"), "best_params": best.get("params"),
        "overfitting_warning": data.get("overfitting_warning"), "best_report": data["best_report"],
    }  # fmt: skip


def list_runs(root: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Backtests and optimisations directly under ``root``, newest first (by when their file was written),
    and the folders whose report.json or optimize.json cannot be read (``name``, ``problem``): one broken
    run does not hide the others."""
    rows: list[dict[str, Any]] = []
    unreadable: list[dict[str, str]] = []
    folders = sorted(root.iterdir()) if root.is_dir() else []
    for folder in folders:
        try:
            if is_optimisation(folder):
                rows.append(_optimisation_row(folder))
            elif (folder / REPORT).is_file():
                rows.append(_backtest_row(folder, run_summary(folder).as_dict()))
        except InvalidInput as exc:
            unreadable.append({"name": folder.name, "problem": exc.problems[0].message})
    rows.sort(key=lambda row: (row["created"], row["name"]), reverse=True)
    return rows, unreadable


def report_folder(root: Path, name: str) -> Path:
    """The folder of the report a run shows: its own, or its best trial's for an optimisation."""
    folder = run_folder(root, name)
    if is_optimisation(folder):
        folder = folder / BEST
    if not (folder / REPORT).is_file():
        raise UnknownRun([FieldProblem("run", f"{name!r} has no report (no {REPORT})")])
    return folder


def compare(root: Path, first: str, second: str) -> dict[str, Any]:
    """Two runs' key metrics side by side (an optimisation by its best trial)."""
    a, b = report_folder(root, first), report_folder(root, second)
    rows = compare_rows(load_metrics(a), load_metrics(b))
    return {"first": first, "second": second, "rows": [list(row) for row in rows]}
