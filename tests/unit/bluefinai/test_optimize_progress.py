"""The optimiser's progress bar: trials and the best value on a terminal, nothing otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.optimize.study import StudySpec, create_study, run_trials, storage_for
from bluefinai.optimize_command import OptimizeBacktests
from tests.unit.bluefinai.test_optimize_command import candles  # noqa: F401 - fixture


@pytest.mark.parametrize("shown", [True, False])
def test_a_bar_only_when_asked(
    shown: bool,
    candles: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = StudySpec(data={"BTC-PERP": str(candles)}, strategy="bb_squeeze", params=["lookback=20:120"],
                     folds=1, train_frac=0.5)  # fmt: skip
    study = create_study(storage_for(f"sqlite:///{tmp_path / 'db.sqlite'}"), "bar", spec)
    capsys.readouterr()
    run_trials(study, spec, OptimizeBacktests(), 1, progress=shown)
    err = capsys.readouterr().err
    assert len(study.trials) == 1
    if shown:
        assert "optimize bar" in err and "1/1" in err and "best return_pct" in err
    else:
        assert err == ""
