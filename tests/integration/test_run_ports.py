"""`bluefinai run` checks before it starts anything (ports free, TLS files readable, nginx accepts its
configuration), serves HTTPS with NGINX_HTTPS_PORT, and rotates its logs by size."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shared.config import PROJECT_ROOT
from tests.conftest import PASSPHRASE, TOKEN, free_port
from tests.integration.test_run_command import read_until
from tests.stack import require_nginx
from tests.tls_certs import Pki, make_test_pki

pytestmark = pytest.mark.integration


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_test_pki(tmp_path / "pki")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def run_env(tmp_path: Path, **values: object) -> dict[str, str]:
    ports = {name: free_port() for name in ("AGENT_PORT", "WEBHOOK_PORT", "SOCKET_PORT", "NGINX_PORT")}
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "BLUEFINAI_ENV_FILE": "",
        "API_TOKEN": TOKEN, "WEBHOOK_PASSPHRASE": PASSPHRASE, "DATA_DIR": str(tmp_path / "data"),
        "MARKET_DATA_SOURCE": "replay", **{k: str(v) for k, v in ports.items()},
    }  # fmt: skip
    return env | {k: str(v) for k, v in values.items()}


def run_to_the_end(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bluefinai.cli", "run"], cwd=PROJECT_ROOT, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


def free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_busy_ports_and_unreadable_tls_files_are_each_named_and_nothing_starts(
    tmp_path: Path, busy_port: int
) -> None:
    require_nginx()
    (tmp_path / "a-folder").mkdir()
    env = run_env(
        tmp_path, NGINX_PORT=busy_port, NGINX_HTTPS_PORT=free_port(),
        TLS_CERT_FILE=tmp_path / "missing.pem", TLS_KEY_FILE=tmp_path / "a-folder",
    )  # fmt: skip
    result = run_to_the_end(env)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert "cannot start:" in lines
    assert f"  NGINX_PORT {busy_port}: already in use (another program listens there)" in lines
    assert f"  TLS_CERT_FILE {tmp_path / 'missing.pem'}: does not exist" in lines
    assert f"  TLS_KEY_FILE {tmp_path / 'a-folder'}: is a folder, not a file" in lines
    assert "Press Ctrl-C" not in result.stdout
    assert all(free(int(env[name])) for name in ("AGENT_PORT", "WEBHOOK_PORT", "SOCKET_PORT"))
    assert not (tmp_path / "data" / "logs").exists()  # no service was started


def test_a_busy_service_port_is_named_too(tmp_path: Path, busy_port: int) -> None:
    result = run_to_the_end(run_env(tmp_path, AGENT_PORT=busy_port))
    assert result.returncode == 1
    assert f"  AGENT_PORT {busy_port}: already in use (another program listens there)" in result.stderr


def test_a_key_nginx_cannot_use_is_reported_in_nginxs_words(tmp_path: Path, pki: Pki) -> None:
    require_nginx()
    env = run_env(
        tmp_path, NGINX_HTTPS_PORT=free_port(), TLS_CERT_FILE=pki.server.cert, TLS_KEY_FILE=pki.ca
    )  # the CA's certificate where the key should be
    result = run_to_the_end(env)
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if "nginx refuses its configuration" in line]
    assert str(pki.ca) in line and "PEM" in line


def test_run_serves_https_redirects_http_and_rotates_its_logs(tmp_path: Path, pki: Pki) -> None:
    require_nginx()
    https_port = free_port()
    env = run_env(
        tmp_path, NGINX_HTTPS_PORT=https_port, TLS_CERT_FILE=pki.server.cert, TLS_KEY_FILE=pki.server.key,
        LOG_MAX_MB=0.002, LOG_BACKUPS=2, BLUEFINAI_ACCESS_LOG=1,
    )  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "bluefinai.cli", "run"], cwd=PROJECT_ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        output = read_until(process, "Press Ctrl-C", 90)
        assert "Press Ctrl-C" in output, output
        assert f"dashboard : https://127.0.0.1:{https_port}/#token={TOKEN}" in output
        assert f"webhook   : POST https://127.0.0.1:{https_port}/webhook" in output
        for _ in range(30):  # access lines for the logs
            response = requests.get(f"https://127.0.0.1:{https_port}/health", verify=str(pki.ca), timeout=5)
            assert response.status_code == 200
        redirect = requests.get(f"http://127.0.0.1:{env['NGINX_PORT']}/", allow_redirects=False, timeout=5)
        assert redirect.headers["Location"] == f"https://127.0.0.1:{https_port}/"
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=30)[0]
    assert process.returncode == 0, rest
    logs = tmp_path / "data" / "logs"
    names = {p.name for p in logs.iterdir()}
    assert {"nginx.log", "nginx.log.1", "nginx.log.2", "agent.log", "agent.log.1"} <= names, names
    assert not any(name.endswith(".3") for name in names)  # LOG_BACKUPS=2
    assert all(p.stat().st_size <= 2100 for p in logs.iterdir())
    nginx_text = "".join((logs / n).read_text() for n in ("nginx.log.2", "nginx.log.1", "nginx.log"))
    assert '"request":"GET /health HTTP/1.1","status":200' in nginx_text
