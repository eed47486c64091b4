"""``bluefinai strategy check FILE:Class``: a look-ahead check of a strategy on real candles.

The strategy's signals are computed on the whole history, then on the history cut at several times T; a
strategy that reads only the past gives, for every candle before T, the same signals either way. The first
candle whose signals change (and the column) is reported, and the exit code is 1.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agent.strategies.api import FLAGS, OPTIONAL, Strategy, StrategyError
from agent.strategies.loader import load_strategy
from agent.strategies.source import history_frame
from shared.config import DEFAULT_REPLAY_FILE
from shared.errors import InvalidInput
from shared.marketdata.candles import NAMES, TIMEFRAMES
from shared.marketdata.prepared import PreparedMarketState
from shared.models import Candle

CUTS = 8


def add_strategy_parser(commands: Any) -> None:
    strategy = commands.add_parser("strategy", help="your own strategies").add_subparsers(
        dest="strategy_command", required=True
    )
    check = strategy.add_parser(
        "check", help="look-ahead check: signals before T must not change when cut at T"
    )
    check.add_argument("target", help="path/to/file.py:ClassName, or a built-in / installed name")
    check.add_argument(
        "--data", type=Path, default=DEFAULT_REPLAY_FILE, help="a candle CSV (default the month)"
    )
    check.add_argument("--cuts", type=int, default=CUTS, help="how many times T to cut at")


@dataclass(frozen=True)
class LookAhead:
    cut: pd.Timestamp  # the last candle kept
    candle: pd.Timestamp  # the first candle whose signals changed
    column: str
    full: Any
    truncated: Any


def strategy_frame(strategy: Strategy, candles: pd.DataFrame) -> pd.DataFrame:
    """The frame a strategy reads over ``candles`` (timestamp open high low close volume, base candles)."""
    stamps = pd.to_datetime(candles["timestamp"], utc=True)
    base_s = int(stamps.diff().dropna().dt.total_seconds().min()) if len(stamps) > 1 else 60
    if (
        base_s not in NAMES
        or TIMEFRAMES[strategy.timeframe] < base_s
        or TIMEFRAMES[strategy.timeframe] % base_s
    ):
        raise InvalidInput(
            f"{strategy.name}.timeframe: {strategy.timeframe} cannot be built from candles of {base_s} s; "
            "give finer data or a coarser timeframe"
        )
    frame = candles.assign(timestamp=stamps).reset_index(drop=True)
    market = PreparedMarketState("BTC-PERP", "check", frame, base_s)
    first = frame.iloc[0]
    market.add_candle(Candle("BTC-PERP", first.timestamp.to_pydatetime(), first.open, first.high, first.low,
                             first.close, first.volume))  # fmt: skip
    return history_frame(market, strategy.timeframe)


def _differ(a: pd.Series, b: pd.Series) -> np.ndarray:
    left, right = a.to_numpy(), b.to_numpy()
    if left.dtype == bool:
        return np.asarray(left != right)
    return np.asarray(~((left == right) | (np.isnan(left) & np.isnan(right))))


def look_ahead(strategy: Strategy, frame: pd.DataFrame, cuts: int = CUTS) -> LookAhead | None:
    """The first look-ahead found (cut at ``cuts`` times T from warmup to the end), or None."""
    full = strategy.evaluate(frame)
    for end in np.unique(np.linspace(strategy.warmup, len(frame) - 1, max(cuts, 1)).astype(int)):
        part = strategy.evaluate(frame.iloc[:end])
        for column in (*FLAGS, *OPTIONAL):
            changed = np.flatnonzero(_differ(full[column].iloc[:end], part[column]))
            if len(changed):
                row = int(changed[0])
                return LookAhead(frame.index[end - 1], frame.index[row], column, full[column].iloc[row],
                                 part[column].iloc[row])  # fmt: skip
    return None


def strategy_command(args: argparse.Namespace) -> int:
    try:
        strategy = load_strategy(args.target)()
        candles = pd.read_csv(args.data)
        frame = strategy_frame(strategy, candles)
        found = look_ahead(strategy, frame, args.cuts)
    except (StrategyError, InvalidInput, OSError, KeyError, ValueError) as exc:
        print(f"strategy check: {exc}")
        return 2
    if found is None:
        print(
            f"{strategy.name}: no look-ahead ({len(frame)} {strategy.timeframe} candles, "
            f"cut at {args.cuts} times)"
        )
        return 0
    print(
        f"{strategy.name}: LOOK-AHEAD: cut after the candle of {found.cut}, {found.column} of the candle of "
        f"{found.candle} changed ({found.full} on the whole history, {found.truncated} cut)"
    )
    return 1
