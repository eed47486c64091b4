"""The Optuna study of ``bluefinai optimize``: where it is stored, its settings, its trials and its summary.

A study lives in DATABASE_URL's database, so workers on any number of machines can join it: on SQLite in
a file beside the database (``bluefinai.db`` -> ``bluefinai.optuna.db``), on PostgreSQL in the schema
``optuna`` of the same database (Optuna's tables, its own alembic_version among them, kept apart from the
platform's). The study's settings (``StudySpec``: data, period, strategy, space, objective, folds) are
stored in its user attributes, so ``--join NAME`` repeats none of them.

A trial is scored on every fold's in-sample window in turn: the mean so far is reported after each fold
and a MedianPruner stops a trial worse than the median of the earlier trials at that fold (after
``prune_after`` trials have completed), so hopeless parameters cost one or two folds, not all of them.
The trial's value is the mean in-sample objective over the folds (each fold's value kept in the trial's
user attribute ``in_sample``). The summary validates the best trial on each fold's out-of-sample window,
applies the overfitting rule (``agent.optimize.walkforward``) and re-runs the best parameters as a plain
backtest over the whole period.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import optuna
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from tqdm import tqdm

from agent.backtest.run import HISTORY, BacktestRequest, BacktestResult, run_backtest
from agent.optimize.objectives import Objective, UndefinedObjective, objective_named
from agent.optimize.space import Dimension, Value, parse_space
from agent.optimize.walkforward import Fold, make_folds, overfitting_warning
from agent.strategies.loader import load_strategy
from shared.db import normalise_url
from shared.errors import FieldProblem, InvalidInput
from shared.marketdata.feeds import ReplayFeed
from shared.symbols import normalise_symbol

logger = logging.getLogger(__name__)
OPTUNA_SCHEMA = "optuna"
SPEC_ATTR = "bluefinai"  # the study's user attribute holding its StudySpec


@dataclass(frozen=True)
class StudySpec:
    """Everything a worker needs to run a study's trials (stored with the study)."""

    data: dict[str, str]  # symbol -> candle file (absolute path: the same on every machine)
    strategy: str  # a STRATEGIES entry: built-in name, entry point or path.py:Class
    params: list[str]  # the --param specs
    objective: str = "return_pct"
    folds: int = 3
    train_frac: float = 0.7
    start: str | None = None  # ISO; None: after the warm-up candles
    end: str | None = None  # ISO, exclusive; None: the end of the data
    sets: list[str] = field(default_factory=list)  # fixed settings of every trial, KEY=VALUE
    seed: int | None = None
    prune_after: int = 5  # completed trials before the pruner may prune

    def as_attrs(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> StudySpec:
        return cls(**attrs)

    def space(self) -> list[Dimension]:
        return parse_space(self.params, load_strategy(self.strategy))

    def goal(self) -> Objective:
        return objective_named(self.objective)


class Backtests(Protocol):
    """How a trial's values become a backtest, and the plain command line of the same backtest."""

    def request(
        self, spec: StudySpec, values: Mapping[str, Value], start: datetime, end: datetime
    ) -> BacktestRequest: ...

    def command(
        self, spec: StudySpec, values: Mapping[str, Value], start: datetime, end: datetime
    ) -> str: ...


def storage_for(database_url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage in DATABASE_URL's database (see the module docstring)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our lines and bar, not one log line a trial
    url = normalise_url(database_url)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path in ("", ":memory:"):
            raise InvalidInput([FieldProblem("DATABASE_URL", "an in-memory database cannot hold a study")])
        file = Path(path)
        return optuna.storages.RDBStorage(f"sqlite:///{file.with_suffix('.optuna' + file.suffix)}")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
    except (IntegrityError, ProgrammingError):
        pass  # another worker created it at the same moment
    finally:
        engine.dispose()
    return optuna.storages.RDBStorage(
        url, engine_kwargs={"connect_args": {"options": f"-csearch_path={OPTUNA_SCHEMA}"}}
    )


def period(spec: StudySpec) -> tuple[int, int, int]:
    """(begin, end, candle seconds) of the study's whole period, from its first market's candles."""
    symbol, path = next(iter(spec.data.items()))
    feed = ReplayFeed(Path(path), normalise_symbol(symbol), start_index=HISTORY)
    begin = int(feed.open_stamps[min(HISTORY, len(feed.open_stamps) - 1)])
    end = int(feed.close_stamps[-1])
    if spec.start is not None:
        begin = max(begin, int(datetime.fromisoformat(spec.start).timestamp()))
    if spec.end is not None:
        end = min(end, int(datetime.fromisoformat(spec.end).timestamp()))
    if end <= begin:
        raise InvalidInput(
            [FieldProblem("--start", f"the period {spec.start} .. {spec.end} holds no candles")]
        )
    return begin, end, feed.interval_s


def folds_of(spec: StudySpec) -> list[Fold]:
    begin, end, step = period(spec)
    return make_folds(begin, end, spec.folds, spec.train_frac, step)


def validate(spec: StudySpec) -> None:
    """Every problem of a new study's settings at once (InvalidInput)."""
    problems: list[FieldProblem] = []
    for check in (spec.space, spec.goal, lambda: folds_of(spec)):
        try:
            check()
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if spec.prune_after < 0:
        problems.append(FieldProblem("--prune-after", f"must be 0 or more, got {spec.prune_after}"))
    if problems:
        raise InvalidInput(problems)


def _sampler_pruner(
    spec: StudySpec, seed: int | None
) -> tuple[optuna.samplers.TPESampler, optuna.pruners.MedianPruner]:
    return (
        optuna.samplers.TPESampler(seed=seed),
        optuna.pruners.MedianPruner(n_startup_trials=spec.prune_after, n_warmup_steps=0),
    )


def create_study(storage: optuna.storages.RDBStorage, name: str, spec: StudySpec) -> optuna.Study:
    """A new study ``name`` with ``spec``; InvalidInput when one of that name exists."""
    validate(spec)
    sampler, pruner = _sampler_pruner(spec, spec.seed)
    try:
        study = optuna.create_study(
            storage=storage, study_name=name, direction=spec.goal().direction, sampler=sampler, pruner=pruner
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise InvalidInput(
            [FieldProblem("--study", f"a study {name!r} exists already: add workers with --join {name}")]
        ) from None
    study.set_user_attr(SPEC_ATTR, spec.as_attrs())
    return study


def join_study(
    storage: optuna.storages.RDBStorage, name: str, seed: int | None
) -> tuple[optuna.Study, StudySpec]:
    """The stored study ``name`` and its settings, sampled with ``seed`` (None: a random seed, so workers
    that join at the same moment do not propose the same parameters; give each its own seed to repeat a
    run)."""
    names = optuna.get_all_study_names(storage)
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise InvalidInput([FieldProblem("--join", f"no study {name!r} in the database (studies: {known})")])
    attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
    if SPEC_ATTR not in attrs:
        raise InvalidInput([FieldProblem("--join", f"study {name!r} was not made by bluefinai optimize")])
    spec = StudySpec.from_attrs(attrs[SPEC_ATTR])
    sampler, pruner = _sampler_pruner(spec, seed)
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner), spec


def score(objective: Objective, result: BacktestResult, where: str) -> float:
    value = objective.value(result)
    if value is None or not math.isfinite(value):
        raise UndefinedObjective(
            f"{objective.name} is undefined {where} ({result.metrics.trade_count} trades)"
        )
    return value


def run_trials(
    study: optuna.Study, spec: StudySpec, backtests: Backtests, trials: int, progress: bool | None = None
) -> None:
    """``trials`` more trials of ``study`` in this process (a bar on a terminal, quiet otherwise)."""
    space, goal, folds = spec.space(), spec.goal(), folds_of(spec)

    def objective(trial: optuna.Trial) -> float:
        values = {d.name: d.suggest(trial) for d in space}
        scores: list[float] = []
        for fold in folds:
            result = run_backtest(backtests.request(spec, values, *fold.train))
            try:
                scores.append(score(goal, result, f"in fold {fold.number}'s in-sample window"))
            except UndefinedObjective as exc:
                trial.set_user_attr("failed", str(exc))
                raise
            trial.set_user_attr("in_sample", scores)
            trial.report(statistics.fmean(scores), step=fold.number)
            if fold is not folds[-1] and trial.should_prune():  # a trial at its last fold is done anyway
                raise optuna.TrialPruned(f"pruned after fold {fold.number}")
        return statistics.fmean(scores)

    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=trials, unit="trial", desc=f"optimize {study.study_name}", disable=not show) as bar:

        def advance(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            bar.update(1)
            completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            if completed:
                bar.set_postfix_str(f"best {goal.name} {study.best_value:.4g}")

        study.optimize(objective, n_trials=trials, catch=(UndefinedObjective,), callbacks=[advance])


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def summarise(study: optuna.Study, spec: StudySpec, backtests: Backtests, out: Path) -> dict[str, Any]:
    """Validate the best trial out of sample, re-run it over the whole period into ``out/best`` and write
    ``out/optimize.json`` (returned). InvalidInput when no trial has completed yet."""
    goal, folds = spec.goal(), folds_of(spec)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise InvalidInput(
            [FieldProblem("--trials", f"study {study.study_name!r} has no completed trial yet")]
        )
    best = study.best_trial
    in_sample = [float(v) for v in best.user_attrs["in_sample"]]
    rows, pairs = [], []
    for fold, is_value in zip(folds, in_sample, strict=True):
        result = run_backtest(backtests.request(spec, best.params, *fold.test))
        oos = _finite(goal.value(result))
        pairs.append((is_value, oos))
        rows.append({
            "fold": fold.number, "in_sample": is_value, "out_of_sample": oos,
            "train": [t.isoformat() for t in fold.train], "test": [t.isoformat() for t in fold.test],
        })  # fmt: skip
    begin, end = folds[0].train[0], folds[-1].test[1]
    run_backtest(backtests.request(spec, best.params, begin, end), out / "best")
    summary: dict[str, Any] = {
        "kind": "optimize",
        "study": study.study_name,
        "objective": goal.name,
        "direction": goal.direction,
        "n_trials": len(study.trials),
        "best": {
            "number": best.number,
            "params": dict(best.params),
            "value": best.value,
            "command": backtests.command(spec, best.params, begin, end),
        },
        "trials": [
            {"number": t.number, "state": t.state.name, "value": _finite(t.value), "params": dict(t.params)}
            for t in study.trials
        ],
        "folds": rows,
        "overfitting_warning": overfitting_warning(goal.name, goal.direction, pairs),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "optimize.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary
