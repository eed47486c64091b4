"""``bluefinai optimize`` in one process on SQLite: the study, its stored settings, pruning, the summary's
contract and every refusal with a clear line."""

from __future__ import annotations

import json
import statistics
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from flask import Flask

from agent.api.backtests import register_backtest_routes
from agent.backtest.run import run_backtest
from agent.optimize.objectives import objective_named
from agent.optimize.study import SPEC_ATTR, StudySpec, storage_for
from bluefinai.cli import main
from bluefinai.optimize_command import OptimizeBacktests
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES

DAYS = 3


@pytest.fixture(scope="module")
def candles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first three days of the real month."""
    path = tmp_path_factory.mktemp("data") / "btc-3d.csv"
    real = load_candle_csv(REAL_CANDLES).iloc[: DAYS * 1440]
    real.assign(timestamp=real["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(path, index=False)
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bluefinai.db'}")
    monkeypatch.setenv("AI_MODEL_PROVIDER", "follow")
    return tmp_path


def test_refusals_name_the_option_and_the_rule(
    env: Path, candles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["optimize", "--data", str(candles), "--strategy", "rsi_divergence"]) == 2
    assert "--study: give --study NAME (a new study) or --join NAME" in capsys.readouterr().err
    base = ["optimize", "--study", "s", "--data", str(candles), "--strategy", "rsi_divergence"]
    assert main([*base, "--param", "lookback=50:10", "--param", "fast=1:2", "--objective", "profit"]) == 2
    err = capsys.readouterr().err
    assert "error: --param lookback: low 50 must be below high 10" in err
    assert "error: --param fast: rsi_divergence has no parameter 'fast'" in err
    assert "error: --objective: unknown metric 'profit'; choose one of return_pct (maximize)" in err
    assert main(["optimize", "--join", "nope", "--data", str(candles)]) == 2
    assert "the study's settings come from the study: leave out --data" in capsys.readouterr().err
    assert main(["optimize", "--join", "nope"]) == 2
    assert "--join: no study 'nope' in the database" in capsys.readouterr().err
    assert not optuna.get_all_study_names(storage_for(f"sqlite:///{env / 'bluefinai.db'}"))  # nothing created


def test_a_study_prunes_hopeless_trials_and_writes_the_contract(
    env: Path, candles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = env / "run"
    args = [
        "optimize", "--study", "prune", "--data", str(candles), "--strategy", "rsi_divergence",
        "--param", "lookback=5:60", "--param", "stop_atr=0.5:10", "--folds", "3",
        "--trials", "8", "--seed", "7", "--prune-after", "2", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    assert "study prune created" in capsys.readouterr().out
    summary = json.loads((out / "optimize.json").read_text())
    assert set(summary) == {"kind", "study", "objective", "direction", "n_trials", "best", "trials", "folds",
                            "overfitting_warning"}  # fmt: skip
    assert (summary["kind"], summary["objective"], summary["direction"]) == (
        "optimize",
        "return_pct",
        "maximize",
    )
    assert summary["n_trials"] == len(summary["trials"]) == 8
    assert set(summary["best"]) == {"number", "params", "value", "command"}
    assert summary["best"]["command"].startswith("bluefinai backtest --data BTC-PERP=")
    assert [f["fold"] for f in summary["folds"]] == [1, 2, 3]
    assert statistics.fmean(f["in_sample"] for f in summary["folds"]) == summary["best"]["value"]
    shown = json.loads((out / "best" / "report.json").read_text())["settings"]
    assert shown["STRATEGIES"] == ["rsi_divergence"] and shown["INTERNAL_SIGNALS"] == "none"
    chosen = ",".join(f"rsi_divergence.{k}={v!r}" for k, v in sorted(summary["best"]["params"].items()))
    assert shown["STRATEGY_PARAMS"] == chosen.split(",")  # the best trial's parameters, shown in its report
    assert (out / "best" / "report.html").is_file()
    # the dashboard's backtest page lists this output as an optimisation and opens its best trial's report
    app = Flask(__name__)
    register_backtest_routes(app, env)
    (listed,) = [r for r in app.test_client().get("/api/backtests").get_json()["runs"] if r["name"] == "run"]
    assert (listed["kind"], listed["study"], listed["best_params"]) == (
        "optimize",
        "prune",
        summary["best"]["params"],
    )
    page = app.test_client().get("/api/backtests/run/report.html")
    assert page.status_code == 200 and page.data == (out / "best" / "report.html").read_bytes()

    storage = storage_for(f"sqlite:///{env / 'bluefinai.db'}")
    assert (env / "bluefinai.optuna.db").is_file()  # beside DATABASE_URL's file, not in it
    study = optuna.load_study(study_name="prune", storage=storage)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "the median pruner stopped no trial"
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    for trial in pruned:  # stopped before the last fold, below the median of the completed trials there
        step = len(trial.user_attrs["in_sample"])
        assert step < 3
        best_so_far = max(trial.intermediate_values.values())
        before = [t.intermediate_values[step] for t in completed if t.number < trial.number]
        assert best_so_far < statistics.median(before)
    assert {t["state"] for t in summary["trials"]} >= {"COMPLETE", "PRUNED"}
    spec = StudySpec.from_attrs(study.user_attrs[SPEC_ATTR])
    assert spec.strategy == "rsi_divergence" and spec.data == {"BTC-PERP": str(candles.resolve())}

    # the best trial's fold values are plain backtests of its parameters over each in-sample window
    backtests, goal = OptimizeBacktests(), objective_named("return_pct")
    best = summary["best"]
    for fold in summary["folds"]:
        start, end = (datetime.fromisoformat(t) for t in fold["train"])
        assert (
            goal.value(run_backtest(backtests.request(spec, best["params"], start, end))) == fold["in_sample"]
        )

    # a joiner runs more trials of the same study with its stored settings; 0 trials: the summary only
    assert main(["optimize", "--join", "prune", "--trials", "1", "--out", str(env / "joined")]) == 0
    assert json.loads((env / "joined" / "optimize.json").read_text())["n_trials"] == 9
    assert main(["optimize", "--study", "prune", "--data", str(candles), "--strategy", "sr_break_volume",
                 "--param", "lookback=10:100"]) == 2  # fmt: skip
    assert "a study 'prune' exists already: add workers with --join prune" in capsys.readouterr().err
