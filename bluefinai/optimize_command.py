"""``bluefinai optimize``: arguments -> a new or joined Optuna study -> trials -> ``optimize.json``.

Each trial's backtests are built from a ``bluefinai backtest`` argument list parsed by that command's own
parser (``OptimizeBacktests``), so the command line written as ``best.command`` runs exactly the backtest a
trial ran.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from agent.backtest.run import BacktestRequest
from agent.optimize.space import Value, split_values
from agent.optimize.study import (
    StudySpec,
    create_study,
    join_study,
    run_trials,
    storage_for,
    summarise,
)
from bluefinai.backtest_command import request_from_args
from bluefinai.optimize_parser import STUDY_OPTIONS
from shared.config import load_settings
from shared.errors import ConfigError, FieldProblem, InvalidInput
from shared.symbols import UnknownSymbol, normalise_symbol


class OptimizeBacktests:
    """Trial values -> ``bluefinai backtest`` arguments -> the request (and the command line)."""

    def argv(self, spec: StudySpec, values: Mapping[str, Value], start: datetime, end: datetime) -> list[str]:
        params, settings = split_values(dict(values))
        argv = [arg for symbol, path in spec.data.items() for arg in ("--data", f"{symbol}={path}")]
        argv += ["--start", start.isoformat(), "--end", end.isoformat(), "--strategy", "none"]
        for item in spec.sets:
            argv += ["--set", item]
        argv += ["--set", f"STRATEGIES={spec.strategy}"]
        if params:
            name = _strategy_name(spec.strategy)
            chosen = ",".join(f"{name}.{key}={_text(value)}" for key, value in sorted(params.items()))
            argv += ["--set", f"STRATEGY_PARAMS={chosen}"]
        for key, value in sorted(settings.items()):
            argv += ["--set", f"{key}={_text(value)}"]
        return argv

    def request(
        self, spec: StudySpec, values: Mapping[str, Value], start: datetime, end: datetime
    ) -> BacktestRequest:
        parser = argparse.ArgumentParser(prog="bluefinai backtest")
        from bluefinai.cli import _backtest_parser

        _backtest_parser(parser)
        args = parser.parse_args(self.argv(spec, values, start, end))
        return replace(request_from_args(args), progress=False)

    def command(self, spec: StudySpec, values: Mapping[str, Value], start: datetime, end: datetime) -> str:
        return shlex.join(["bluefinai", "backtest", *self.argv(spec, values, start, end)])


def _text(value: Value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _strategy_name(entry: str) -> str:
    from agent.strategies.loader import load_strategy

    return load_strategy(entry).name


def _data(args: argparse.Namespace) -> dict[str, str]:
    data: dict[str, str] = {}
    for item in args.data:
        symbol, _, path = item.rpartition("=")
        try:
            market = normalise_symbol(symbol or args.symbol)
        except UnknownSymbol as exc:
            raise InvalidInput([FieldProblem("--data", str(exc))]) from None
        if not Path(path).is_file():
            raise InvalidInput([FieldProblem("--data", f"{path} does not exist")])
        data[market] = str(Path(path).resolve())
    if not data:
        raise InvalidInput([FieldProblem("--data", "give a candle file (--data FILE)")])
    return data


def _strategy(args: argparse.Namespace) -> str:
    if args.strategy:
        return str(args.strategy)
    configured = load_settings().strategies
    if len(configured) != 1:
        raise InvalidInput(
            [
                FieldProblem(
                    "--strategy", f"give the strategy to optimise (STRATEGIES holds {len(configured)})"
                )
            ]
        )
    return configured[0]


def spec_from_args(args: argparse.Namespace) -> StudySpec:
    """A new study's settings from the arguments."""
    for item in args.set:
        if "=" not in item or not item.partition("=")[0].strip():
            raise InvalidInput([FieldProblem("--set", f"{item!r} must look like KEY=VALUE")])
    return StudySpec(
        data=_data(args), strategy=_strategy(args), params=list(args.param),
        objective=args.objective or "return_pct", folds=3 if args.folds is None else args.folds,
        train_frac=0.7 if args.train_frac is None else args.train_frac,
        start=args.start.isoformat() if args.start else None, end=args.end.isoformat() if args.end else None,
        sets=list(args.set), seed=args.seed, prune_after=args.prune_after,
    )  # fmt: skip


def default_out(study: str) -> Path:
    settings = load_settings()
    assert settings.backtest_dir is not None  # derived from DATA_DIR when unset
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study)
    folder, n = settings.backtest_dir / f"{stamp}-optimize-{safe}", 1
    while folder.exists():
        n += 1
        folder = settings.backtest_dir / f"{stamp}-optimize-{safe}-{n}"
    return folder


def _check_choice(args: argparse.Namespace) -> None:
    if bool(args.study) == bool(args.join):
        raise InvalidInput(
            [FieldProblem("--study", "give --study NAME (a new study) or --join NAME, one of them")]
        )
    if args.join:
        given = [f"--{o.replace('_', '-')}" for o in STUDY_OPTIONS if getattr(args, o) not in (None, [])]
        if given:
            raise InvalidInput(
                [
                    FieldProblem(
                        "--join", f"the study's settings come from the study: leave out {', '.join(given)}"
                    )
                ]
            )
    if args.trials < 0:
        raise InvalidInput([FieldProblem("--trials", f"must be 0 or more, got {args.trials}")])


def optimize_command(args: argparse.Namespace) -> int:
    try:
        _check_choice(args)
        storage = storage_for(load_settings().database_url)
        if args.join:
            study, spec = join_study(storage, args.join, args.seed)
        else:
            spec = spec_from_args(args)
            study = create_study(storage, args.study, spec)
            print(f"study {study.study_name} created", flush=True)
        backtests = OptimizeBacktests()
        run_trials(study, spec, backtests, args.trials)
        if args.trials == 0 and not any(t.state.name == "COMPLETE" for t in study.trials):
            print(f"study {study.study_name}: no completed trial yet (workers: --join {study.study_name})")
            return 0
        out = args.out or default_out(study.study_name)
        summary = summarise(study, spec, backtests, out)
    except InvalidInput as exc:
        for problem in exc.problems:
            print(f"error: {problem.field}: {problem.message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ConfigError:
        raise
    states: dict[str, int] = {}
    for trial in summary["trials"]:
        states[trial["state"]] = states.get(trial["state"], 0) + 1
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(states.items()))
    best = summary["best"]
    print(f"study {summary['study']}: {summary['n_trials']} trials ({counts})")
    print(f"best #{best['number']}: {summary['objective']} {best['value']:.6g} with {best['params']}")
    for fold in summary["folds"]:
        oos = "undefined" if fold["out_of_sample"] is None else f"{fold['out_of_sample']:.6g}"
        print(f"fold {fold['fold']}: in-sample {fold['in_sample']:.6g}, out-of-sample {oos}")
    if summary["overfitting_warning"]:
        print(f"WARNING: {summary['overfitting_warning']}", file=sys.stderr)
    print(f"reproduce: {best['command']}")
    print(f"wrote {out / 'optimize.json'} and the best trial's report in {out / 'best'}")
    return 0
