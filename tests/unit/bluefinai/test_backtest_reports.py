"""``bluefinai backtest`` without --out writes into BACKTEST_DIR; ``list``, ``show`` and ``compare`` read the
runs back from their report.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bluefinai.cli import main
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "backtests"
    monkeypatch.setenv("BACKTEST_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "btc-3000.csv"
    real = load_candle_csv(REAL_CANDLES).iloc[:3000]
    real.assign(timestamp=real["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(path, index=False)
    return path


def backtest(data: Path, *extra: str) -> None:
    args = ["backtest", "--data", str(data), "--timeframe", "5m", "--set", "KELLY_FRACTION=0", *extra]
    assert main(args) == 0


def test_runs_are_listed_newest_first_shown_and_compared(
    runs_dir: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "list"]) == 0
    assert "no backtests" in capsys.readouterr().out
    backtest(data)
    backtest(data, "--set", "RISK_PER_TRADE=0.005")
    first, second = sorted(p.name for p in runs_dir.iterdir())
    assert first.endswith("-BTC-PERP") and second.startswith(first[:8])
    reports = {name: json.loads((runs_dir / name / "report.json").read_text()) for name in (first, second)}
    capsys.readouterr()

    assert main(["backtest", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [run["name"] for run in listed] == [second, first]  # newest first
    assert [run["trades"] for run in listed] == [
        reports[second]["trade_count"],
        reports[first]["trade_count"],
    ]
    assert listed[0]["total_return"] == pytest.approx(reports[second]["total_return"])

    assert main(["backtest", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[0] == "run" and table[1].startswith(second) and table[2].startswith(first)

    assert main(["backtest", "show", first]) == 0
    shown = capsys.readouterr().out
    trades_line = next(line for line in shown.splitlines() if line.startswith("Trades"))
    assert trades_line.split()[-1] == str(reports[first]["trade_count"])
    assert f"report: {runs_dir / first / 'report.html'}" in shown

    assert main(["backtest", "compare", first, str(runs_dir / second)]) == 0
    compared = capsys.readouterr().out.splitlines()
    assert first in compared[0] and second in compared[0]
    row = next(line for line in compared if line.startswith("Trades"))
    assert row.split()[1:] == [str(reports[first]["trade_count"]), str(reports[second]["trade_count"])]


def test_an_unknown_run_names_the_field_and_the_newest_runs(
    runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "show", "nope"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: run: no backtest 'nope'") and "none yet" in error
