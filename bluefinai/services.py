"""How each service runs as a real process (gunicorn), and how to wait until it is healthy.

Used by ``bluefinai run`` and by the integration and end-to-end tests, so both start services the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from bluefinai.processes import LogRotation, spawn
from shared.config import PROJECT_ROOT, Settings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    app: str  # gunicorn application spec
    port: int
    worker_args: tuple[str, ...]

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"


def service_specs(
    agent_port: int, webhook_port: int, socket_port: int, socket_workers: int = 1
) -> list[ServiceSpec]:
    return [
        # The websocket service runs under gevent: gunicorn 26+ has no eventlet worker; simple-websocket
        # gives Flask-SocketIO the websocket transport under the gevent worker. Several workers
        # (SOCKET_WORKERS) share events through Redis (REDIS_URL, checked by the settings).
        ServiceSpec(
            "websocket",
            "dashboard.app:create_app()",
            socket_port,
            ("-k", "gevent", "-w", str(socket_workers)),
        ),
        # One agent worker: the engine loop lives in it; threads serve the API.
        ServiceSpec(
            "agent", "agent.api.app:create_app()", agent_port, ("-k", "gthread", "-w", "1", "--threads", "8")
        ),
        ServiceSpec(
            "webhook",
            "webhook.app:create_app()",
            webhook_port,
            # an event loop per worker (webhook/worker.py): two use both cores. nginx keeps up to 16 idle
            # connections to it for 60 s: the workers keep them longer, so nginx never sends an alert down a
            # connection the service has just closed
            ("-k", "webhook.worker.WebhookWorker", "-w", "2", "--keep-alive", "75"),
        ),
    ]


def gunicorn_command(spec: ServiceSpec, bind_host: str = "127.0.0.1", reload: bool = False) -> list[str]:
    command = [
        sys.executable, "-m", "gunicorn", *spec.worker_args,
        "-b", f"{bind_host}:{spec.port}",
        "--graceful-timeout", "5", "--timeout", "60", "--no-control-socket",
        "--chdir", str(PROJECT_ROOT),
        "--pythonpath", f"{PROJECT_ROOT},{PROJECT_ROOT / 'websocket'}",
    ]  # fmt: skip
    if os.environ.get("BLUEFINAI_ACCESS_LOG"):  # without a file gunicorn formats no access line at all
        command += ["--access-logfile", "-"]
    if reload:
        command.append("--reload")
    return [*command, spec.app]


def serve(settings: Settings, name: str, reload: bool = False) -> int:
    """Replace this process with the named service's gunicorn (the containers' command)."""
    specs = {
        s.name: s
        for s in service_specs(
            settings.agent_port, settings.webhook_port, settings.socket_port, settings.socket_workers
        )
    }
    command = gunicorn_command(specs[name], settings.bind_host, reload)
    os.execv(command[0], command)
    return 0  # not reached


def start_service(
    spec: ServiceSpec,
    env: Mapping[str, str],
    log_path: Path | None = None,
    bind_host: str = "127.0.0.1",
    reload: bool = False,
    rotation: LogRotation | None = None,
) -> subprocess.Popen[bytes]:
    """Start one service in its own process group; its output goes to ``log_path`` (rotated by size when
    ``rotation`` is given)."""
    return spawn(gunicorn_command(spec, bind_host, reload), env, log_path, rotation)


def wait_healthy(url: str, timeout_s: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False
