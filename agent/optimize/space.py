"""The search space of ``bluefinai optimize``: ``--param NAME=LOW:HIGH`` or ``--param NAME=A,B,C``.

A lower-case NAME is a parameter the strategy declares (``Strategy.params``): a range must be of its type
(integers for an ``IntParam``) and within its declared bounds. An upper-case NAME is a setting (as in .env,
e.g. ``RISK_PER_TRADE=0.005:0.02``, ``RISK_TOLERANCE=conservative,moderate``), each bound or choice checked
by the settings' own rules. ``LOW`` must be below ``HIGH``; a range of integers searches integers, any
other range real numbers; choices are searched as given. Every problem is reported at once, each naming
the parameter and the rule (``InvalidInput``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import optuna

from agent.strategies.api import FloatParam, IntParam, Strategy
from agent.strategies.loader import typed_value
from shared.config import Settings, load_settings
from shared.errors import ConfigError, FieldProblem, InvalidInput

FIELD = "--param"
# settings the optimiser itself sets for each trial: not part of a search space
OWNED = ("STRATEGIES", "STRATEGY_PARAMS", "INTERNAL_SIGNALS", "DATABASE_URL", "SYMBOLS", "TRADING_MODE")

Value = int | float | str


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: a range (``int`` / ``float``) or a list of choices."""

    name: str
    kind: Literal["int", "float", "choice"]
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Value, ...] = ()

    @property
    def is_setting(self) -> bool:
        return self.name.isupper()

    def suggest(self, trial: optuna.Trial) -> Value:
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high)
        chosen = trial.suggest_categorical(self.name, list(self.choices))
        assert chosen is not None  # the choices hold no None
        return chosen


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _strategy_dimension(name: str, body: str, strategy: type[Strategy]) -> Dimension:
    declared = strategy.params.get(name)
    if declared is None:
        known = ", ".join(strategy.params) or "none"
        raise ValueError(f"{strategy.name} has no parameter {name!r} (known: {known})")
    if ":" not in body:
        choices: list[Value] = []
        for text in body.split(","):
            value = typed_value(strategy, name, text.strip())
            choices.append(declared.check(value))
        return Dimension(name, "choice", choices=tuple(dict.fromkeys(choices)))
    low_text, _, high_text = (part.strip() for part in body.partition(":"))
    low, high = typed_value(strategy, name, low_text), typed_value(strategy, name, high_text)
    for bound in (low, high):
        if not declared.low <= bound <= declared.high:
            raise ValueError(
                f"{bound} is outside {strategy.name}.{name}'s declared bounds "
                f"[{declared.low}, {declared.high}]"
            )
    if low >= high:
        raise ValueError(f"low {low} must be below high {high}")
    kind: Literal["int", "float"] = "int" if isinstance(declared, IntParam) else "float"
    assert isinstance(declared, IntParam | FloatParam)
    return Dimension(name, kind, float(low), float(high))


def _check_setting(name: str, value: str) -> None:
    try:
        load_settings(**{name.lower(): value})
    except ConfigError as exc:
        rule = "; ".join(line for line in exc.problems if name in line) or "; ".join(exc.problems)
        raise ValueError(f"{value!r} is refused: {rule}") from None


def _setting_dimension(name: str, body: str) -> Dimension:
    if name.lower() not in Settings.model_fields:
        raise ValueError(f"{name} is not a setting (see .env.example)")
    if name in OWNED:
        raise ValueError(f"{name} is set by the optimiser itself (one of {', '.join(OWNED)})")
    if ":" not in body:
        choices = [text.strip() for text in body.split(",") if text.strip()]
        for choice in choices:
            _check_setting(name, choice)
        return Dimension(name, "choice", choices=tuple(dict.fromkeys(choices)))
    low_text, _, high_text = (part.strip() for part in body.partition(":"))
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise ValueError(f"{body!r}: a range is LOW:HIGH of numbers") from None
    if low >= high:
        raise ValueError(f"low {low_text} must be below high {high_text}")
    _check_setting(name, low_text)
    _check_setting(name, high_text)
    kind: Literal["int", "float"] = "int" if _is_int(low_text) and _is_int(high_text) else "float"
    return Dimension(name, kind, low, high)


def parse_space(specs: Sequence[str], strategy: type[Strategy]) -> list[Dimension]:
    """The dimensions of ``--param`` specs for ``strategy``; InvalidInput with every problem."""
    problems: list[FieldProblem] = []
    dimensions: list[Dimension] = []
    seen: set[str] = set()
    for spec in specs:
        name, sep, body = (part.strip() for part in spec.partition("="))
        if not sep or not name or not body or body.startswith(",") or body.endswith((",", ":")):
            problems.append(FieldProblem(FIELD, f"{spec!r} must look like NAME=LOW:HIGH or NAME=A,B,C"))
            continue
        if name in seen:
            problems.append(FieldProblem(f"{FIELD} {name}", "given twice"))
            continue
        seen.add(name)
        try:
            if name.isupper():
                dimensions.append(_setting_dimension(name, body))
            else:
                dimensions.append(_strategy_dimension(name, body, strategy))
        except ValueError as exc:
            problems.append(FieldProblem(f"{FIELD} {name}", str(exc)))
    if not specs:
        problems.append(FieldProblem(FIELD, "give at least one parameter to search (NAME=LOW:HIGH)"))
    if problems:
        raise InvalidInput(problems)
    return dimensions


def split_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial's values as (strategy parameters, settings)."""
    strategy = {k: v for k, v in values.items() if not k.isupper()}
    settings = {k: v for k, v in values.items() if k.isupper()}
    return strategy, settings
