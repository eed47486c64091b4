"""Start the platform as real processes (gunicorn services + nginx) on free ports.

``stack`` is the plain one (HTTP only); ``launch_stack`` starts one with HTTPS, TradingView's client
certificate required and allowed addresses, as ``bluefinai run`` would with those settings."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import pytest
import requests

from bluefinai.nginx import find_nginx, nginx_inputs, render_nginx_conf, start_nginx
from bluefinai.processes import stop_process
from bluefinai.services import ServiceSpec, service_specs, start_service, wait_healthy
from shared.config import load_settings
from shared.db import Database
from tests.conftest import PASSPHRASE, TOKEN, free_port


@dataclass(frozen=True)
class Tls:
    """HTTPS for the stack: the server's certificate and key, and the CA that client certificates must
    verify against (TV_CLIENT_CA_FILE)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path


@dataclass
class RunningStack:
    env: dict[str, str]
    specs: dict[str, ServiceSpec]
    log_dir: Path
    nginx_port: int
    https_port: int | None = None
    nginx_inputs: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Popen[bytes]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    @property
    def https_base(self) -> str:
        assert self.https_port is not None, "this stack has no HTTPS"
        return f"https://127.0.0.1:{self.https_port}"

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
        payload = json.dumps({"passphrase": passphrase, **body})
        # TradingView sends text/plain when the message is not declared JSON
        return requests.post(
            f"{self.base}/webhook", data=payload, headers={"Content-Type": "text/plain"}, timeout=5
        )


def require_nginx() -> None:
    if find_nginx() is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (make test installs it)")
        pytest.skip("nginx is not installed")


@contextmanager
def launch_stack(
    tmp_path: Path,
    tls: Tls | None = None,
    require_tv_cert: bool = False,
    allowed_ips: tuple[str, ...] = (),
    nginx_overrides: dict[str, str] | None = None,
) -> Iterator[RunningStack]:
    """The three services and nginx in front, the services told the same HTTPS settings as nginx."""
    require_nginx()
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
        "WEBHOOK_REQUIRE_TV_CERT": "true" if require_tv_cert else "false",
        "WEBHOOK_ALLOWED_IPS": ",".join(allowed_ips),
    }
    if tls is not None:
        env |= {
            "NGINX_HTTPS_PORT": str(free_port()),
            "TLS_CERT_FILE": str(tls.cert_file),
            "TLS_KEY_FILE": str(tls.key_file),
            "TV_CLIENT_CA_FILE": str(tls.client_ca_file),
        }
    settings = load_settings(**{k.lower(): v for k, v in env.items() if k not in ("PATH", "HOME")})
    specs = {s.name: s for s in service_specs(ports["agent"], ports["webhook"], ports["websocket"])}
    inputs = nginx_inputs(settings, tmp_path / "nginx") | (nginx_overrides or {})
    running = RunningStack(env, specs, tmp_path, settings.nginx_port, settings.nginx_https_port, inputs)
    try:
        Database(settings.database_url).migrate()  # `bluefinai db upgrade`, once, before any service starts
        for name in ("websocket", "agent", "webhook"):
            running.start(name)
        conf = render_nginx_conf(inputs)
        run_dir = Path(inputs["RUN_DIR"])
        running.processes["nginx"] = start_nginx(conf, run_dir, tmp_path / "nginx.log")
        if not wait_healthy(f"{running.base}/health", 15, running.processes["nginx"]):
            raise AssertionError(f"nginx did not start:\n{(tmp_path / 'nginx.log').read_text()[-3000:]}")
        yield running
    finally:
        for name in list(running.processes):
            running.stop(name)


# The plain stack's tests send hundreds of alerts a second from one address (fuzzing, the skeleton): nginx's
# per-address limit would answer most of them itself. The limit is tested on its own (test_nginx_tls.py).
TEST_WEBHOOK_RATE = {"WEBHOOK_RATE": "10000r/s", "WEBHOOK_BURST": "10000"}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RunningStack]:
    with launch_stack(tmp_path, nginx_overrides=TEST_WEBHOOK_RATE) as running:
        yield running
