"""``bluefinai backtest list | show RUN | compare A B``: the past runs in BACKTEST_DIR, read back from their
``report.json`` (see ``agent.backtest.library``)."""

from __future__ import annotations

import argparse
import json
import sys

from agent.backtest.library import compare_rows, find_runs, load_metrics, resolve
from agent.backtest.report import num, pct, terminal_table
from shared.config import Settings
from shared.errors import InvalidInput


def _list(settings: Settings, as_json: bool) -> int:
    assert settings.backtest_dir is not None
    runs = find_runs(settings.backtest_dir)
    if as_json:
        print(json.dumps([run.as_dict() for run in runs], indent=2))
        return 0
    if not runs:
        print(f"no backtests in {settings.backtest_dir} yet (run `bluefinai backtest --data FILE`)")
        return 0
    header = f"{'run':<40} {'written (UTC)':<20} {'trades':>6} {'return':>9} {'max dd':>9} {'sharpe':>7}"
    print(header)
    for run in runs:
        print(
            f"{run.name:<40} {run.created:%Y-%m-%d %H:%M:%S}  {run.trades:>6} {pct(run.total_return):>9} "
            f"{pct(run.max_drawdown):>9} {num(run.sharpe):>7}"
        )
    return 0


def past_runs_command(settings: Settings, args: argparse.Namespace) -> int:
    assert settings.backtest_dir is not None
    try:
        if args.backtest_command == "list":
            return _list(settings, args.json)
        if args.backtest_command == "show":
            folder = resolve(settings.backtest_dir, args.run)
            print(terminal_table(load_metrics(folder)))
            print(f"report: {folder / 'report.html'}")
            return 0
        first, second = (
            resolve(settings.backtest_dir, args.first),
            resolve(settings.backtest_dir, args.second),
        )
        rows = compare_rows(load_metrics(first), load_metrics(second))
        width = max(len(label) for label, _, _ in rows)
        print(f"{'':<{width}}  {first.name:>28}  {second.name:>28}")
        for label, a, b in rows:
            print(f"{label:<{width}}  {a:>28}  {b:>28}")
        return 0
    except InvalidInput as exc:
        for problem in exc.problems:
            print(f"error: {problem.field}: {problem.message}", file=sys.stderr)
        return 2
