"""``bluefinai strategy check`` catches a strategy that reads the next candle and passes the clean ones
(the README's example and a built-in), on the real month."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bluefinai.cli import main
from shared.config import DEFAULT_REPLAY_FILE

PEEKING = """
import pandas as pd
from agent.strategies.api import Strategy
from agent.strategies.builtin import frame_of


class Peeking(Strategy):
    name = "peeking"
    timeframe = "15m"
    warmup = 2

    def signals(self, frame: pd.DataFrame) -> pd.DataFrame:
        rises = (frame["close"].shift(-1) > frame["close"]).to_numpy()  # tomorrow's close: look-ahead
        return frame_of(frame, entry_long=rises)
"""


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The month's first four days of 1m candles."""
    path = tmp_path_factory.mktemp("candles") / "days.csv"
    pd.read_csv(DEFAULT_REPLAY_FILE, nrows=4 * 1440).to_csv(path, index=False)
    return path


def test_a_look_ahead_strategy_is_caught(
    tmp_path: Path, days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "peeking.py"
    file.write_text(PEEKING)
    assert main(["strategy", "check", f"{file}:Peeking", "--data", str(days)]) == 1
    out = capsys.readouterr().out
    assert "peeking: LOOK-AHEAD" in out and "entry_long of the candle of" in out


@pytest.mark.parametrize("target", ["examples/strategies/ema_pullback.py:EmaPullback", "bb_squeeze"])
def test_clean_strategies_pass(target: str, days: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["strategy", "check", target, "--data", str(days)]) == 0
    assert "no look-ahead (384 15m candles" in capsys.readouterr().out


def test_a_bad_target_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["strategy", "check", "missing.py:X"]) == 2
    assert capsys.readouterr().out.count("\n") == 1


def test_the_readme_example_signals_on_real_candles(days: Path) -> None:
    from agent.strategies.loader import load_strategy
    from bluefinai.strategy_command import strategy_frame

    strategy = load_strategy("examples/strategies/ema_pullback.py:EmaPullback")()
    signals = strategy.evaluate(strategy_frame(strategy, pd.read_csv(days)))
    assert signals["entry_long"].sum() >= 1 and signals["entry_short"].sum() >= 1
    entries = signals[signals["entry_long"] | signals["entry_short"]]
    assert entries["stop_loss"].notna().all() and entries["take_profit"].notna().all()
