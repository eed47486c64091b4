"""Two ``bluefinai optimize`` worker processes share one study in PostgreSQL: the study holds the sum of
their trials, and the best trial is reproduced by the plain ``bluefinai backtest`` command it names."""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import optuna
import pytest

from agent.backtest.run import run_backtest
from agent.optimize.objectives import objective_named
from agent.optimize.study import SPEC_ATTR, StudySpec, storage_for
from bluefinai.cli import main
from bluefinai.optimize_command import OptimizeBacktests
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES, postgres_available
from tests.postgres import PG_ADMIN_URL

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
TRIALS = 3  # per worker


def bluefinai(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bluefinai.cli", *args], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, f"{process.args} exited {process.returncode}:\n{out}\n{err}"
    return out


def test_two_workers_share_one_postgres_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    data = tmp_path / "btc-3d.csv"
    real = load_candle_csv(REAL_CANDLES).iloc[: 3 * 1440]
    real.assign(timestamp=real["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(data, index=False)
    settings = {"BLUEFINAI_ENV_FILE": "", "DATA_DIR": str(tmp_path), "DATABASE_URL": PG_ADMIN_URL,
                "AI_MODEL_PROVIDER": "follow"}  # fmt: skip
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    env = {**os.environ, **settings}
    name = f"test_{uuid.uuid4().hex[:12]}"
    storage = storage_for(PG_ADMIN_URL)
    try:
        # the study, created here with no trial; then two worker processes join it at the same time
        assert main(["optimize", "--study", name, "--data", str(data), "--strategy", "rsi_divergence",
                     "--param", "lookback=5:60", "--param", "stop_atr=0.5:10", "--folds", "2",
                     "--trials", "0"]) == 0  # fmt: skip
        assert "no completed trial yet" in capsys.readouterr().out
        workers = [
            bluefinai(env, "optimize", "--join", name, "--trials", str(TRIALS), "--seed", str(seed),
                      "--out", str(tmp_path / f"worker{seed}"))
            for seed in (1, 2)
        ]  # fmt: skip
        outputs = [finish(worker) for worker in workers]
        assert all("best #" in out for out in outputs)  # each wrote its summary of the study as it was
        study = optuna.load_study(study_name=name, storage=storage)
        assert len(study.trials) == 2 * TRIALS
        assert all(t.state.is_finished() for t in study.trials)
        # no trials: the summary of the whole study
        assert main(["optimize", "--join", name, "--trials", "0", "--out", str(tmp_path / "summary")]) == 0
        summary = json.loads((tmp_path / "summary" / "optimize.json").read_text())
        assert summary["n_trials"] == len(summary["trials"]) == 2 * TRIALS
        best = summary["best"]
        assert best["value"] == study.best_value
        assert statistics.fmean(f["in_sample"] for f in summary["folds"]) == best["value"]

        # the plain command reproduces the best trial's run over the whole period, figure for figure
        command = shlex.split(best["command"])
        assert command[:2] == ["bluefinai", "backtest"]
        assert main([*command[1:], "--out", str(tmp_path / "plain")]) == 0
        plain = json.loads((tmp_path / "plain" / "report.json").read_text())
        rerun = json.loads((tmp_path / "summary" / "best" / "report.json").read_text())
        assert plain == rerun
        # and the trial's own values: the same backtest over each in-sample window, exactly
        spec = StudySpec.from_attrs(study.user_attrs[SPEC_ATTR])
        goal = objective_named(summary["objective"])
        for fold in summary["folds"]:
            start, end = (datetime.fromisoformat(t) for t in fold["train"])
            result = run_backtest(OptimizeBacktests().request(spec, best["params"], start, end))
            assert goal.value(result) == fold["in_sample"]
    finally:
        if name in optuna.get_all_study_names(storage):
            optuna.delete_study(study_name=name, storage=storage)
