"""start_development.sh against a fake `docker`: the override file, the env files, no TLS required, and
no file named in .env silently replaced by an empty folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.unit.deploy.compose_model import ROOT, SHELL_TOOLS, tool_path, write_fake


def run(tmp_path: Path, env_text: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    shutil.copy(ROOT / "start_development.sh", tmp_path)
    for script in ("docker_preflight.sh", "dotenv.sh", "service_env.sh"):
        shutil.copy(ROOT / "scripts" / script, tmp_path / "scripts")
    (tmp_path / ".env").write_text(env_text)
    path = tool_path(tmp_path / "bin", SHELL_TOOLS)
    write_fake(tmp_path / "bin", "docker", f'echo "$*" >> {tmp_path}/calls\n')
    result = subprocess.run(
        ["/bin/bash", str(tmp_path / "start_development.sh")],
        env={"PATH": path},
        capture_output=True,
        text=True,
    )
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    return result, calls


def test_starts_with_the_override_and_without_a_certificate(tmp_path: Path) -> None:
    result, calls = run(tmp_path, "API_TOKEN=token-1234567890\nBLUEFIN_PRIVATE_KEY=0xabc\n")
    assert result.returncode == 0, result.stderr
    assert calls[-1] == "compose -f docker-compose.yml -f docker-compose.dev.yml up --build"
    assert "BLUEFIN_PRIVATE_KEY" not in (tmp_path / ".deploy/websocket.env").read_text()


def test_a_missing_file_named_in_env_stops_it(tmp_path: Path) -> None:
    result, calls = run(tmp_path, "TV_CLIENT_CA_FILE=/nowhere/ca.pem\n")
    assert (
        result.returncode == 1
        and "TV_CLIENT_CA_FILE=/nowhere/ca.pem (from .env) does not exist" in result.stderr
    )
    assert not any(" up " in c for c in calls)
