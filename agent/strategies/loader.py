"""Finding strategy classes: STRATEGIES entries and ``bluefinai strategy check`` targets.

An entry is ``path/to/file.py:ClassName`` (a file, relative to the project root unless absolute), or a
name: a built-in (``agent.strategies.builtin``) or an entry point of the group ``bluefinai.strategies``
(an installed package's ``[project.entry-points."bluefinai.strategies"] name = "module:Class"``).
Each problem raises ``StrategyError`` naming the entry and the rule.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

from agent.strategies.api import IntParam, Strategy, StrategyError
from agent.strategies.builtin import BUILT_IN
from shared.config import PROJECT_ROOT
from shared.errors import FieldProblem

ENTRY_POINT_GROUP = "bluefinai.strategies"


def _strategy_class(entry: str, found: object) -> type[Strategy]:
    if not (isinstance(found, type) and issubclass(found, Strategy)) or found.__dict__.get("abstract"):
        raise StrategyError(f"{entry}: is not a Strategy subclass (agent.strategies.api.Strategy)")
    return found


def load_file_class(entry: str) -> type[Strategy]:
    """``path.py:ClassName`` -> the class, imported from that file."""
    path_text, _, class_name = entry.rpartition(":")
    if not path_text or not class_name:
        raise StrategyError(f"{entry}: must be path/to/file.py:ClassName")
    path = Path(path_text)
    path = path if path.is_absolute() else PROJECT_ROOT / path
    if path.suffix != ".py" or not path.is_file():
        raise StrategyError(f"{entry}: no Python file at {path}")
    module_name = f"bluefinai_strategy_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StrategyError(f"{entry}: {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except StrategyError as exc:
        sys.modules.pop(module_name, None)
        raise StrategyError(f"{entry}: {exc}") from exc
    except Exception as exc:  # a user's file may fail in any way: one line naming it
        sys.modules.pop(module_name, None)
        raise StrategyError(f"{entry}: importing {path.name} failed: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, class_name):
        raise StrategyError(f"{entry}: {path.name} has no class {class_name}")
    return _strategy_class(entry, getattr(module, class_name))


def load_named(entry: str) -> type[Strategy]:
    """A built-in strategy or an installed entry point, by name."""
    if entry in BUILT_IN:
        return BUILT_IN[entry]
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name == entry:
            try:
                found = point.load()
            except Exception as exc:  # an installed package may fail in any way: one line naming it
                raise StrategyError(
                    f"{entry}: loading entry point {point.value} failed: {type(exc).__name__}: {exc}"
                ) from exc
            return _strategy_class(entry, found)
    installed = sorted(point.name for point in entry_points(group=ENTRY_POINT_GROUP))
    known = ", ".join([*BUILT_IN, *installed])
    raise StrategyError(f"{entry}: no built-in or installed strategy of that name (known: {known})")


def load_strategy(entry: str) -> type[Strategy]:
    entry = entry.strip()
    return load_file_class(entry) if ":" in entry else load_named(entry)


def parse_params(entries: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """STRATEGY_PARAMS entries (``name.param=value``) by strategy name, the values as given."""
    by_name: dict[str, dict[str, str]] = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        name, _, param = key.strip().partition(".")
        by_name.setdefault(name, {})[param] = value.strip()
    return by_name


def typed_value(cls: type[Strategy], param: str, text: str) -> int | float:
    """``text`` as the type of ``cls``'s parameter ``param`` (ValueError naming the rule when it is not)."""
    declared = cls.params.get(param)
    if declared is None:
        raise ValueError(f"unknown parameter (known: {', '.join(cls.params) or 'none'})")
    if isinstance(declared, IntParam):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"must be an integer, got {text!r}") from None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None


def instantiate(cls: type[Strategy], values: Mapping[str, str]) -> Strategy:
    """An instance of ``cls`` with ``values`` (text, as in STRATEGY_PARAMS) converted and checked; every
    problem at once."""
    problems: list[FieldProblem] = []
    typed: dict[str, int | float] = {}
    for param, text in values.items():
        try:
            value = typed_value(cls, param, text)  # ValueError for an unknown parameter too
            typed[param] = cls.params[param].check(value)
        except ValueError as exc:
            problems.append(FieldProblem(f"{cls.name}.{param}", str(exc)))
    if problems:
        raise StrategyError(problems)
    return cls(**typed)


def load_strategies(entries: tuple[str, ...], params: tuple[str, ...] = ()) -> list[Strategy]:
    """One instance of each entry's class, with its STRATEGY_PARAMS (``params``: ``name.param=value``) and
    the defaults for the rest; every problem at once, one line each."""
    loaded: list[Strategy] = []
    problems: list[str] = []
    chosen = parse_params(params)
    names: list[str] = []
    for entry in entries:
        try:
            cls = load_strategy(entry)
            names.append(cls.name)
            loaded.append(instantiate(cls, chosen.get(cls.name, {})))
        except StrategyError as exc:
            problems.extend(f"{p.field}: {p.message}" if p.field != "strategy" else p.message
                            for p in exc.problems)  # fmt: skip
    problems.extend(
        f"{name}: named by two strategies" for name in sorted({n for n in names if names.count(n) > 1})
    )
    problems.extend(
        f"STRATEGY_PARAMS: {name} is not a strategy of STRATEGIES ({', '.join(names) or 'none'})"
        for name in chosen
        if name not in names
    )
    if problems:
        raise StrategyError("; ".join(problems))
    return loaded
