"""docker-compose.yml as docker compose sees it, without Docker: YAML (merge keys resolved), then
interpolation of every string value with compose's rules (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:+alternative}``, ``${VAR+alternative}``, ``${VAR:?error}``, nesting, ``$$``), and the ``x-`` keys
dropped. Plus the shell test helpers: a PATH holding only the tools named and the fakes written."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    pass


def _braced(text: str, start: int, env: Mapping[str, str]) -> tuple[str, int]:
    """Evaluate the ``${...}`` whose ``${`` ends at ``start``; return its value and the index after ``}``."""
    name_match = _NAME.match(text, start)
    if not name_match:
        raise InterpolationError(f"bad variable at {text[start - 2 :]!r}")
    name, i = name_match.group(), name_match.end()
    operator = ""
    for candidate in (":-", ":+", ":?", "-", "+", "?"):
        if text.startswith(candidate, i):
            operator, i = candidate, i + len(candidate)
            break
    operand, i = _interpolate(text, i, env, stop_at_brace=True)
    value = env.get(name)
    if operator == "" and operand:
        raise InterpolationError(f"unsupported expression ${{{name}{operand}}}")
    if operator in (":-", "-"):
        unset = value is None or (operator == ":-" and value == "")
        return (operand if unset else value or ""), i
    if operator in (":+", "+"):
        present = value is not None and (operator == "+" or value != "")
        return (operand if present else ""), i
    if operator in (":?", "?") and (value is None or (operator == ":?" and value == "")):
        raise InterpolationError(f"{name} is required: {operand}")
    return value or "", i


def _interpolate(text: str, i: int, env: Mapping[str, str], stop_at_brace: bool = False) -> tuple[str, int]:
    out: list[str] = []
    while i < len(text):
        char = text[i]
        if stop_at_brace and char == "}":
            return "".join(out), i + 1
        if char != "$":
            out.append(char)
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            value, i = _braced(text, i + 2, env)
            out.append(value)
        elif match := _NAME.match(text, i + 1):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            out.append(char)
            i += 1
    if stop_at_brace:
        raise InterpolationError(f"unclosed ${{ in {text!r}")
    return "".join(out), i


def interpolate(text: str, env: Mapping[str, str]) -> str:
    return _interpolate(text, 0, env)[0]


def _walk(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [_walk(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, env) for k, v in value.items()}
    return value


def load_compose(name: str = "docker-compose.yml", env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The file as compose resolves it with ``env`` as the variables (the shell and .env)."""
    raw = yaml.safe_load((ROOT / name).read_text())
    return {k: _walk(v, env or {}) for k, v in raw.items() if not k.startswith("x-")}


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines (an ``export`` prefix allowed); comments and blank lines skipped; values as written."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = re.sub(r"^export\s+", "", stripped).partition("=")
        result[key.strip()] = value
    return result


def tool_path(bindir: Path, tools: tuple[str, ...]) -> str:
    """A PATH of ``bindir`` holding symlinks to ``tools`` (and whatever fakes are written there)."""
    bindir.mkdir(exist_ok=True)
    for tool in tools:
        found = shutil.which(tool)
        if found and not (bindir / tool).exists():
            (bindir / tool).symlink_to(found)
    return str(bindir)


def write_fake(bindir: Path, name: str, body: str) -> Path:
    path = bindir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return path


SHELL_TOOLS = (
    "bash", "env", "dirname", "cat", "printf", "echo", "sed", "awk", "grep", "mktemp", "chmod", "mkdir", "mv",
    "head", "tail", "stat", "seq", "sleep", "tr", "id", "date", "hostname", "rm", "cp",
)  # fmt: skip
