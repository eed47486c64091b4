"""The dashboard's Backtests view: past runs in BACKTEST_DIR (``agent.backtest.runs``), read-only.

- ``GET /api/backtests``: backtests and optimisations, newest first, with their headline figures (and the
  folders whose report cannot be read, in ``unreadable``);
- ``GET /api/backtests/<run>``: one run: a backtest's metrics (the report's rows) and breakdowns, or an
  optimisation's optimize.json (best params, objective, folds, the overfitting warning) with its best
  trial's metrics;
- ``GET /api/backtests/<run>/report.html`` (an optimisation's: its best trial's report): the page itself,
  sandboxed by its Content-Security-Policy (its own inline scripts and styles only, no fetches);
- ``GET /api/backtests/compare?first=A&second=B``: two runs' key metrics side by side.

A run is named by its folder name alone: anything that could reach outside BACKTEST_DIR is refused (400),
an unknown run is 404.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request

from agent.backtest.library import REPORT, load_metrics
from agent.backtest.report import metric_rows
from agent.backtest.runs import (
    UnknownRun,
    compare,
    is_optimisation,
    list_runs,
    read_optimisation,
    report_folder,
    run_folder,
)
from shared.errors import InvalidInput

REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:"
)


def _refused(exc: InvalidInput) -> Any:
    status = 404 if isinstance(exc, UnknownRun) else 400
    return jsonify(error="unknown run" if status == 404 else "invalid run", details=exc.details()), status


def _backtest(folder: Path) -> dict[str, Any]:
    report = json.loads((folder / REPORT).read_text(encoding="utf-8"))
    rows = [list(r) for r in metric_rows(load_metrics(folder))]
    return {
        "kind": "backtest", "name": folder.name, "metrics": rows, "breakdowns": report.get("breakdowns"),
        "vetoes": report.get("vetoes"), "settings": report.get("settings"),
    }  # fmt: skip


def register_backtest_routes(app: Flask, root: Path) -> None:
    @app.get("/api/backtests")
    def backtests() -> Any:
        runs, unreadable = list_runs(root)
        return jsonify(runs=runs, unreadable=unreadable)

    @app.get("/api/backtests/compare")
    def backtests_compare() -> Any:
        try:
            return jsonify(compare(root, request.args.get("first", ""), request.args.get("second", "")))
        except InvalidInput as exc:
            return _refused(exc)

    @app.get("/api/backtests/<run>")
    def backtest(run: str) -> Any:
        try:
            folder = run_folder(root, run)
            if not is_optimisation(folder):
                return jsonify(_backtest(folder))
            answer = {**read_optimisation(folder), "name": folder.name, "best_metrics": None}
            if answer["best_report"]:
                best = load_metrics(report_folder(root, run))
                answer["best_metrics"] = [list(r) for r in metric_rows(best)]
            return jsonify(answer)
        except InvalidInput as exc:
            return _refused(exc)

    @app.get("/api/backtests/<run>/report.html")
    def backtest_page(run: str) -> Any:
        try:
            page = (report_folder(root, run) / "report.html").read_bytes()
        except InvalidInput as exc:
            return _refused(exc)
        except OSError:
            return jsonify(error="unknown run", details=[{"field": "run", "message": "no report.html"}]), 404
        response = Response(page, mimetype="text/html")
        response.headers["Content-Security-Policy"] = REPORT_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
