"""The arguments of ``bluefinai optimize`` (kept apart from the command, so building the CLI's parser
imports nothing heavy)."""

from __future__ import annotations

import argparse
from pathlib import Path

# what --join reads from the study: giving one of them with --join is refused
STUDY_OPTIONS = ("data", "strategy", "param", "objective", "folds", "train_frac", "start", "end", "set")


def add_optimize_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from bluefinai.cli import _utc_date

    parser = commands.add_parser("optimize", help="search a strategy's parameters with Optuna (walk-forward)")
    parser.add_argument("--study", help="name of a new study (stored in DATABASE_URL)")
    parser.add_argument("--join", metavar="STUDY", help="run more trials of a stored study (its settings)")
    parser.add_argument("--data", action="append", default=[], metavar="[SYMBOL=]FILE", help="candle file")
    parser.add_argument("--symbol", default="BTC-PERP", help="market of a --data given without SYMBOL=")
    parser.add_argument(
        "--strategy", help="a STRATEGIES entry: built-in name or path.py:Class (default: STRATEGIES, if one)"
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=LOW:HIGH|A,B,C",
        help="a searched parameter: the strategy's (lower-case) or a setting (upper-case); repeat",
    )  # fmt: skip
    parser.add_argument("--objective", help="metric to optimise (default return_pct); see the README")
    parser.add_argument("--folds", type=int, help="walk-forward folds (default 3)")
    parser.add_argument("--train-frac", type=float, help="in-sample share of each fold (default 0.7)")
    parser.add_argument("--start", type=_utc_date, help="first candle of the period (default: after warm-up)")
    parser.add_argument("--end", type=_utc_date, help="end of the period, exclusive (default: end of data)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed setting")
    parser.add_argument("--trials", type=int, default=20, help="trials this worker runs (default 20)")
    parser.add_argument("--seed", type=int, help="seed of the TPE sampler (default: random)")
    parser.add_argument(
        "--prune-after", type=int, default=5, help="completed trials before pruning starts (default 5)"
    )
    parser.add_argument("--out", type=Path, help="folder (default BACKTEST_DIR/<UTC time>-optimize-<study>)")
