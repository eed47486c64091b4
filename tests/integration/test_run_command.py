"""`bluefinai run` on a machine with no .env: creates one, starts everything, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bluefinai.nginx import find_nginx
from shared.config import PROJECT_ROOT
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def read_until(process: subprocess.Popen[str], marker: str, timeout_s: float) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and marker not in seen:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen += line
    return seen


def test_run_creates_env_starts_all_services_and_stops_on_sigterm(tmp_path: Path) -> None:
    if find_nginx() is None:
        pytest.skip("nginx is not installed")
    env_file = tmp_path / ".env"
    ports = {name: free_port() for name in ("AGENT_PORT", "WEBHOOK_PORT", "SOCKET_PORT", "NGINX_PORT")}
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
        "BLUEFINAI_ENV_FILE": str(env_file),
        "DATA_DIR": str(tmp_path / "data"), **{k: str(v) for k, v in ports.items()},
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "bluefinai.cli", "run"], cwd=PROJECT_ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        output = read_until(process, "Press Ctrl-C", 90)
        assert "Press Ctrl-C" in output, output
        assert f"created {env_file}" in output
        values = dict(
            line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line and line[0] != "#"
        )
        token = values["API_TOKEN"]
        assert len(token) >= 24 and f"#token={token}" in output
        base = f"http://127.0.0.1:{ports['NGINX_PORT']}"
        for path in ("/health", "/"):
            assert requests.get(base + path, timeout=5).status_code == 200
        status = requests.get(
            f"{base}/api/status", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()
        assert status["mode"] == "simulation" and status["engine"]["feed"] == {"BTC-PERP": "replay"}
        assert status["config"]["API_TOKEN"] == "***" and token not in str(status)
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=30)[0]
    assert process.returncode == 0, rest
    for port in ports.values():
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
    logs = "".join(p.read_text() for p in (tmp_path / "data" / "logs").glob("*.log"))
    assert token not in logs and values["WEBHOOK_PASSPHRASE"] not in logs
