"""Start the platform as real processes (gunicorn services + nginx) on free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import pytest
import requests

from agent.services import (
    ServiceSpec,
    find_nginx,
    render_local_nginx_conf,
    service_specs,
    start_nginx,
    start_service,
    stop_process,
    wait_healthy,
)
from shared.config import PROJECT_ROOT
from tests.conftest import PASSPHRASE, TOKEN, free_port


@dataclass
class RunningStack:
    env: dict[str, str]
    specs: dict[str, ServiceSpec]
    log_dir: Path
    nginx_port: int
    processes: dict[str, Popen[bytes]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def start(self, name: str) -> None:
        spec = self.specs[name]
        process = start_service(spec, self.env, self.log_dir / f"{name}.log")
        self.processes[name] = process
        if not wait_healthy(spec.health_url, 60, process):
            log = (self.log_dir / f"{name}.log").read_text()[-3000:]
            raise AssertionError(f"{name} did not become healthy:\n{log}")

    def stop(self, name: str) -> None:
        stop_process(self.processes.pop(name))

    def api(self, path: str) -> requests.Response:
        return requests.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)

    def alert(self, body: dict[str, object], passphrase: str = PASSPHRASE) -> requests.Response:
        import json

        payload = json.dumps({"passphrase": passphrase, **body})
        # TradingView sends text/plain when the message is not declared JSON
        return requests.post(
            f"{self.base}/webhook", data=payload, headers={"Content-Type": "text/plain"}, timeout=5
        )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RunningStack]:
    if find_nginx() is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (make test installs it)")
        pytest.skip("nginx is not installed")
    ports = {"agent": free_port(), "webhook": free_port(), "websocket": free_port()}
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "BLUEFINAI_ENV_FILE": "",
        "API_TOKEN": TOKEN,
        "WEBHOOK_PASSPHRASE": PASSPHRASE,
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'stack.db'}",
        "AGENT_PORT": str(ports["agent"]),
        "WEBHOOK_PORT": str(ports["webhook"]),
        "SOCKET_PORT": str(ports["websocket"]),
        "NGINX_PORT": str(free_port()),
        "MARKET_DATA_SOURCE": "replay",
        "REPLAY_SPEED": "1",  # one candle a minute: the market does not move during the test
        "LOG_LEVEL": "INFO",
    }
    specs = {s.name: s for s in service_specs(ports["agent"], ports["webhook"], ports["websocket"])}
    running = RunningStack(env, specs, tmp_path, int(env["NGINX_PORT"]))
    try:
        for name in ("websocket", "agent", "webhook"):
            running.start(name)
        run_dir = tmp_path / "nginx"
        conf = render_local_nginx_conf(
            PROJECT_ROOT / "nginx" / "nginx.local.conf.template", running.nginx_port,
            ports["agent"], ports["webhook"], ports["websocket"], run_dir,
        )  # fmt: skip
        running.processes["nginx"] = start_nginx(conf, run_dir)
        assert wait_healthy(f"{running.base}/health", 15, running.processes["nginx"]), "nginx did not start"
        yield running
    finally:
        for name in list(running.processes):
            running.stop(name)
