"""scripts/service_env.sh (pure shell, for Docker hosts without Python) writes what
shared.config.service_environment would give each service: the same keys, the same values."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from shared.config import SECRET_FIELDS, SERVICES, service_environment
from tests.unit.deploy.compose_model import ROOT, SHELL_TOOLS, parse_env_file, tool_path

SCRIPT = ROOT / "scripts/service_env.sh"


def sample_env() -> str:
    """Every secret there is (one in lower case, one exported), ordinary settings, comments, a stale
    BLUEFINAI_SERVICE and values with '=' and spaces."""
    lines = ["# a comment", "", "TRADING_MODE=real", "BLUEFINAI_SERVICE=all"]
    for i, field in enumerate(SECRET_FIELDS):
        name = field.upper()
        if i == 0:
            name = field  # lower case: still withheld
        elif i == 1:
            name = f"export {name}"
        lines.append(f"{name}=secret-{i}==x")
    lines += [
        "DATABASE_URL=postgresql://u:p@db:5432/b",
        'LOG_LEVEL="INFO"',
        "  SYMBOLS=BTC-PERP,ETH-PERP",
        "E=",
    ]
    return "\n".join(lines) + "\n"


def run(tmp_path: Path, env_text: str) -> Path:
    (tmp_path / ".env").write_text(env_text)
    out = tmp_path / ".deploy"
    result = subprocess.run(
        [str(SCRIPT), str(tmp_path / ".env"), str(out)],
        env={"PATH": tool_path(tmp_path / "bin", SHELL_TOOLS)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("service", SERVICES)
def test_each_file_is_what_service_environment_gives(tmp_path: Path, service: str) -> None:
    text = sample_env()
    out = run(tmp_path, text)
    written = parse_env_file((out / f"{service}.env").read_text())
    assert written == service_environment(parse_env_file(text), service)


def test_the_internet_facing_services_get_no_exchange_or_ai_key(tmp_path: Path) -> None:
    out = run(tmp_path, sample_env())
    files = {s: parse_env_file((out / f"{s}.env").read_text()) for s in SERVICES}
    exchange_and_ai = {"BLUEFIN_PRIVATE_KEY", "ANTHROPIC_API_KEY", "PERPLEXITY_API_KEY", "BLUEFIN_API_SECRET"}
    for service in ("webhook", "websocket"):
        assert not exchange_and_ai & {k.upper() for k in files[service]}, service
    assert "WEBHOOK_PASSPHRASE" in files["webhook"] and "WEBHOOK_PASSPHRASE" not in files["websocket"]
    assert "API_TOKEN" in files["websocket"]
    assert exchange_and_ai <= set(files["agent"])
    assert all(f["DATABASE_URL"] == "postgresql://u:p@db:5432/b" for f in files.values())


def test_files_are_private_and_rewritten_not_appended(tmp_path: Path) -> None:
    out = run(tmp_path, "API_TOKEN=first\n")
    out = run(tmp_path, "API_TOKEN=second\n")
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for service in SERVICES:
        path = out / f"{service}.env"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() == f"API_TOKEN=second\nBLUEFINAI_SERVICE={service}\n"
    assert (out / ".gitignore").read_text() == "*\n"
    assert sorted(p.name for p in out.iterdir()) == [
        ".gitignore",
        "agent.env",
        "webhook.env",
        "websocket.env",
    ]


def test_a_missing_env_file_is_named(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPT), str(tmp_path / "nope.env"), str(tmp_path / ".deploy")], capture_output=True, text=True
    )
    assert result.returncode == 1 and "nope.env is missing" in result.stderr
    assert not (tmp_path / ".deploy").exists()
