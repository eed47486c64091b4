"""The public strategy API: subclass ``Strategy``, declare what it needs, compute signals on whole frames.

A strategy is a class with keyword-only class attributes, checked when the class is defined:

- ``name``: lower-case letters, digits and ``_`` (its signals' source is ``strategy:<name>``);
- ``timeframe``: one of the candle timeframes (``shared.marketdata.candles.TIMEFRAMES``), at least the
  candle file's or feed's interval;
- ``warmup``: how many candles of that timeframe the signal at one candle depends on (1..500): live, each
  closed candle is evaluated on the last ``warmup`` candles, so nothing may reach further back;
- ``params``: name -> ``IntParam`` / ``FloatParam`` (a default and its bounds, so a search can vary them);
  an instance takes overrides as keyword arguments (``MyStrategy(fast=12)``) and reads ``self.p["fast"]``.

``indicators(frame)`` and ``signals(frame)`` are vectorised. ``frame`` holds the closed candles of the
timeframe, oldest first, indexed by open time (UTC): ``open high low close volume`` and every column of
``shared.indicators.INDICATOR_COLUMNS`` as the platform computed it over the whole history (``ema_20``,
``rsi``, ``bb_width``, ``rel_volume`` ...). ``indicators`` returns it with the strategy's own columns added;
``signals`` returns, for every row, the bool columns ``entry_long entry_short exit_long exit_short`` and
optionally ``stop_loss`` and ``take_profit`` (prices, NaN for none) and ``confidence`` (0..1, NaN for none).
A row's signals may use that row and the rows before it, never later ones (``bluefinai strategy check``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from shared.alert_fields import SOURCE_LENGTH
from shared.errors import FieldProblem, InvalidInput
from shared.marketdata.candles import TIMEFRAMES
from shared.marketdata.snapshot import RECENT_CANDLES

FLAGS = ("entry_long", "entry_short", "exit_long", "exit_short")
PRICES = ("stop_loss", "take_profit")
OPTIONAL = (*PRICES, "confidence")
SOURCE_PREFIX = "strategy:"
NAME_RULE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_WARMUP = RECENT_CANDLES  # what a live market state keeps per timeframe


class StrategyError(InvalidInput):
    FIELD = "strategy"


@dataclass(frozen=True)
class IntParam:
    """An integer parameter: its default and the bounds a value (and a search) must stay within."""

    default: int
    low: int
    high: int

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"must be an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"must be within [{self.low}, {self.high}], got {value}")
        return int(value)


@dataclass(frozen=True)
class FloatParam:
    """A real parameter: its default and the bounds a value (and a search) must stay within."""

    default: float
    low: float
    high: float

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ValueError(f"must be a number, got {value!r}")
        if not self.low <= float(value) <= self.high:
            raise ValueError(f"must be within [{self.low}, {self.high}], got {value}")
        return float(value)


Param = IntParam | FloatParam


def _class_problems(cls: type[Strategy]) -> list[FieldProblem]:
    where = cls.__name__
    problems: list[FieldProblem] = []
    name = cls.__dict__.get("name", getattr(cls, "name", None))
    longest = SOURCE_LENGTH - len(SOURCE_PREFIX)
    if not isinstance(name, str) or not NAME_RULE.match(name) or len(name) > longest:
        problems.append(
            FieldProblem(
                f"{where}.name",
                f"must be lower-case letters, digits and _ (starting with a letter), at most {longest} "
                f"characters; got {name!r}",
            )
        )
    timeframe = getattr(cls, "timeframe", None)
    if timeframe not in TIMEFRAMES:
        problems.append(
            FieldProblem(f"{where}.timeframe", f"must be one of {', '.join(TIMEFRAMES)}; got {timeframe!r}")
        )
    warmup = getattr(cls, "warmup", None)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 1 <= warmup <= MAX_WARMUP:
        problems.append(
            FieldProblem(f"{where}.warmup", f"must be an integer 1..{MAX_WARMUP}, got {warmup!r}")
        )
    if getattr(cls.signals, "__isabstractmethod__", False):
        problems.append(
            FieldProblem(f"{where}.signals", "must be defined: signals(self, frame) -> DataFrame")
        )
    params = getattr(cls, "params", None)
    if not isinstance(params, dict):
        problems.append(FieldProblem(f"{where}.params", "must be a dict of name -> IntParam/FloatParam"))
        return problems
    for key, param in params.items():
        field = f"{where}.params[{key!r}]"
        if not isinstance(key, str) or not key.isidentifier():
            problems.append(FieldProblem(field, "a parameter's name must be an identifier"))
        elif not isinstance(param, IntParam | FloatParam):
            problems.append(FieldProblem(field, f"must be an IntParam or FloatParam; got {param!r}"))
        elif not param.low <= param.high:
            problems.append(FieldProblem(field, f"low {param.low} must be at most high {param.high}"))
        else:
            try:
                param.check(param.default)
            except ValueError as exc:
                problems.append(FieldProblem(f"{field}.default", str(exc)))
    return problems


class Strategy(ABC):
    """Subclass it; see the module docstring. ``abstract = True`` on an intermediate base skips checks."""

    name: ClassVar[str]
    timeframe: ClassVar[str]
    warmup: ClassVar[int]
    params: ClassVar[dict[str, Param]] = {}
    abstract: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract", False):
            return
        problems = _class_problems(cls)
        if problems:
            raise StrategyError(problems)

    def __init__(self, **values: Any) -> None:
        known = ", ".join(self.params) or "none"
        problems = [
            FieldProblem(f"{self.name}.{key}", f"unknown parameter (known: {known})")
            for key in values
            if key not in self.params
        ]
        chosen: dict[str, float | int] = {}
        for key, param in self.params.items():
            try:
                chosen[key] = param.check(values.get(key, param.default))
            except ValueError as exc:
                problems.append(FieldProblem(f"{self.name}.{key}", str(exc)))
        if problems:
            raise StrategyError(problems)
        self.p = chosen

    @property
    def source(self) -> str:
        return f"{SOURCE_PREFIX}{self.name}"

    def indicators(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the strategy's own columns added (by default nothing is added)."""
        return frame

    @abstractmethod
    def signals(self, frame: pd.DataFrame) -> pd.DataFrame:
        """For each row of ``frame`` (as ``indicators`` returned it): the FLAGS and optional columns."""

    def evaluate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``signals(indicators(frame))``, checked and normalised (``check_signals``)."""
        with_indicators = self.indicators(frame.copy())
        if not isinstance(with_indicators, pd.DataFrame) or len(with_indicators) != len(frame):
            raise StrategyError(
                [FieldProblem(f"{self.name}.indicators", "must return a DataFrame with a row per candle")]
            )
        return check_signals(self.name, frame, self.signals(with_indicators))


def check_signals(name: str, frame: pd.DataFrame, signals: Any) -> pd.DataFrame:
    """``signals`` as a frame with every FLAGS and OPTIONAL column on ``frame``'s index; StrategyError names
    each broken rule (the field and the first candle that breaks it)."""
    if not isinstance(signals, pd.DataFrame) or len(signals) != len(frame):
        raise StrategyError(
            [FieldProblem(f"{name}.signals", "must return a DataFrame with a row per candle of the frame")]
        )
    problems: list[FieldProblem] = []
    out: dict[str, np.ndarray] = {}  # one frame of them at the end: adding columns one by one is slow
    for column in FLAGS:
        if column not in signals.columns:
            problems.append(
                FieldProblem(f"{name}.signals.{column}", "missing column (bool, a row per candle)")
            )
        elif not pd.api.types.is_bool_dtype(signals[column].dtype):
            problems.append(
                FieldProblem(f"{name}.signals.{column}", f"must be bool, got dtype {signals[column].dtype}")
            )
        else:
            out[column] = signals[column].to_numpy(dtype=bool)
    for column in OPTIONAL:
        if column not in signals.columns:
            out[column] = np.full(len(frame), np.nan)
        elif not pd.api.types.is_numeric_dtype(signals[column].dtype) or pd.api.types.is_bool_dtype(
            signals[column].dtype
        ):
            problems.append(
                FieldProblem(
                    f"{name}.signals.{column}", f"must be numeric, got dtype {signals[column].dtype}"
                )
            )
        else:
            out[column] = signals[column].to_numpy(dtype=float)
    if problems:
        raise StrategyError(problems)
    close = frame["close"].to_numpy(dtype=float)
    long, short = out["entry_long"], out["entry_short"]

    def first(mask: np.ndarray, column: str, rule: str) -> None:
        rows = np.flatnonzero(mask)
        if len(rows):
            at = frame.index[rows[0]]
            problems.append(FieldProblem(f"{name}.signals.{column}", f"{rule} (first at the candle of {at})"))

    first(long & short, "entry_long", "entry_long and entry_short both true on one candle")
    stop, target = out["stop_loss"], out["take_profit"]
    with np.errstate(invalid="ignore"):
        first(long & (stop >= close), "stop_loss", "a long entry's stop_loss must be below the close")
        first(short & (stop <= close), "stop_loss", "a short entry's stop_loss must be above the close")
        first(long & (target <= close), "take_profit", "a long entry's take_profit must be above the close")
        first(short & (target >= close), "take_profit", "a short entry's take_profit must be below the close")
        confidence = out["confidence"]
        first((confidence < 0) | (confidence > 1), "confidence", "must be within 0..1 (NaN: none)")
        first(~np.isnan(stop) & (stop <= 0), "stop_loss", "must be a positive price")
        first(~np.isnan(target) & (target <= 0), "take_profit", "must be a positive price")
    if problems:
        raise StrategyError(problems)
    return pd.DataFrame(out, index=frame.index)
