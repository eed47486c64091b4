"""The strategy API refuses bad classes, parameters and signals with messages naming the field and rule;
STRATEGIES loads files, built-ins and entry points, and a bad entry stops the start with one line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agent.strategies.api import IntParam, Strategy, StrategyError
from agent.strategies.builtin import BUILT_IN, frame_of
from agent.strategies.loader import load_strategies, load_strategy
from agent.wiring import build_strategies, refuse_timeframes_below
from shared.config import PROJECT_ROOT, load_settings
from shared.errors import ConfigError
from shared.marketdata.feeds import SyntheticFeed

EXAMPLE = "examples/strategies/ema_pullback.py:EmaPullback"


def frame(rows: int = 5) -> pd.DataFrame:
    close = np.linspace(100, 104, rows)
    return pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1.0},
        index=pd.date_range("2022-01-01", periods=rows, freq="15min", tz="UTC"),
    )


class Always(Strategy):
    name = "always"
    timeframe = "15m"
    warmup = 1
    params = {"n": IntParam(3, low=1, high=5)}
    output: pd.DataFrame | None = None

    def signals(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.output if self.output is not None else frame_of(frame)


def test_class_attributes_are_checked_when_the_class_is_defined() -> None:
    with pytest.raises(StrategyError) as caught:

        class Bad(Strategy):
            name = "Bad Name"
            timeframe = "2m"
            warmup = 0
            params = {"n": IntParam(9, low=1, high=5)}

            def signals(self, frame: pd.DataFrame) -> pd.DataFrame:
                return frame

    fields = [p.field for p in caught.value.problems]
    assert fields == ["Bad.name", "Bad.timeframe", "Bad.warmup", "Bad.params['n'].default"]
    assert "must be one of 1m, 5m, 15m, 1h, 4h, 1d" in str(caught.value)


def test_parameters_stay_within_their_bounds() -> None:
    assert Always(n=5).p == {"n": 5}
    with pytest.raises(StrategyError, match=r"always.n: must be within \[1, 5\], got 6"):
        Always(n=6)
    with pytest.raises(StrategyError, match=r"always\.m: unknown parameter"):
        Always(m=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.drop(columns="exit_short"), "always.signals.exit_short: missing column"),
        (lambda s: s.assign(entry_long=1), "always.signals.entry_long: must be bool"),
        (
            lambda s: s.assign(entry_long=True, stop_loss=500.0),
            "a long entry's stop_loss must be below the close",
        ),
        (
            lambda s: s.assign(entry_short=True, take_profit=500.0),
            "a short entry's take_profit must be below",
        ),
        (lambda s: s.assign(confidence=1.5), "always.signals.confidence: must be within 0..1"),
        (lambda s: s.assign(entry_long=True, entry_short=True), "entry_long and entry_short both true"),
    ],
)
def test_bad_signals_are_refused_naming_the_field_and_rule(change, message: str) -> None:  # type: ignore[no-untyped-def]
    strategy = Always()
    candles = frame()
    strategy.output = change(frame_of(candles))
    with pytest.raises(StrategyError, match=message):
        strategy.evaluate(candles)


def test_the_example_file_and_built_ins_load_and_entries_fail_with_one_line() -> None:
    names = [s.name for s in load_strategies((EXAMPLE, "bb_squeeze"))]
    assert names == ["ema_pullback", "bb_squeeze"]
    assert set(BUILT_IN) == {"ema_cross", "sma_cross", "rsi_divergence", "sr_break_volume", "bb_squeeze"}
    with pytest.raises(StrategyError, match="has no class Nope"):
        load_strategy("examples/strategies/ema_pullback.py:Nope")
    with pytest.raises(StrategyError, match="no built-in or installed strategy of that name"):
        load_strategy("nope")
    with pytest.raises(ConfigError) as caught:
        build_strategies(load_settings(strategies="examples/strategies/ema_pullback.py:Nope"))
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith("STRATEGIES: ")
    with pytest.raises(ConfigError, match=r"STRATEGIES: 'missing\.py:X': no Python file"):
        load_settings(strategies="missing.py:X")


def test_a_strategy_timeframe_below_the_candles_is_refused() -> None:
    settings = load_settings(strategies="examples/strategies/ema_pullback.py:EmaPullback")
    with pytest.raises(ConfigError, match=r"STRATEGIES \(ema_pullback.timeframe\)=15m: the candles are 1h"):
        refuse_timeframes_below(settings, [SyntheticFeed("BTC-PERP", interval_s=3600)])


def test_entry_points_of_the_group_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "my_strats.py"
    package.write_text(
        (PROJECT_ROOT / EXAMPLE.split(":")[0]).read_text().replace('"ema_pullback"', '"installed"')
    )
    info = tmp_path / "my_strats-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-strats\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[bluefinai.strategies]\ninstalled = my_strats:EmaPullback\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_strategy("installed").name == "installed"
    sys.modules.pop("my_strats", None)
