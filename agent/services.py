"""How each service runs as a real process (gunicorn), and how to wait until it is healthy.

Used by ``bluefinai run`` and by the integration and end-to-end tests, so both start services the same way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

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


def service_specs(agent_port: int, webhook_port: int, socket_port: int) -> list[ServiceSpec]:
    return [
        # The websocket service runs under gevent: gunicorn 26+ has no eventlet worker; simple-websocket
        # gives Flask-SocketIO the websocket transport under the gevent worker.
        ServiceSpec("websocket", "dashboard.app:create_app()", socket_port, ("-k", "gevent", "-w", "1")),
        # One agent worker: the engine loop lives in it; threads serve the API.
        ServiceSpec(
            "agent", "agent.app:create_app()", agent_port, ("-k", "gthread", "-w", "1", "--threads", "8")
        ),
        ServiceSpec(
            "webhook",
            "webhook.app:create_app()",
            webhook_port,
            ("-k", "gthread", "-w", "2", "--threads", "4"),
        ),
    ]


def gunicorn_command(spec: ServiceSpec, bind_host: str = "127.0.0.1", reload: bool = False) -> list[str]:
    command = [
        sys.executable, "-m", "gunicorn", *spec.worker_args,
        "-b", f"{bind_host}:{spec.port}",
        "--graceful-timeout", "5", "--timeout", "60", "--no-control-socket",
        "--chdir", str(PROJECT_ROOT),
        "--pythonpath", f"{PROJECT_ROOT},{PROJECT_ROOT / 'websocket'}",
        "--access-logfile", "-" if os.environ.get("BLUEFINAI_ACCESS_LOG") else "/dev/null",
    ]  # fmt: skip
    if reload:
        command.append("--reload")
    return [*command, spec.app]


def serve(settings: Settings, name: str, reload: bool = False) -> int:
    """Replace this process with the named service's gunicorn (the containers' command)."""
    specs = {
        s.name: s for s in service_specs(settings.agent_port, settings.webhook_port, settings.socket_port)
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
) -> subprocess.Popen[bytes]:
    """Start one service in its own process group (so it can be stopped with all its workers)."""
    stdout = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    return subprocess.Popen(
        gunicorn_command(spec, bind_host, reload),
        env=dict(env),
        cwd=PROJECT_ROOT,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it does not exit in time."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(5)
    except ProcessLookupError:
        pass


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


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def render_local_nginx_conf(
    template: Path, listen_port: int, agent_port: int, webhook_port: int, socket_port: int, run_dir: Path
) -> str:
    """Fill ``nginx/nginx.local.conf.template`` for a run without Docker."""
    text = template.read_text()
    values = {
        "LISTEN_PORT": str(listen_port),
        "AGENT_ADDR": f"127.0.0.1:{agent_port}",
        "WEBHOOK_ADDR": f"127.0.0.1:{webhook_port}",
        "SOCKET_ADDR": f"127.0.0.1:{socket_port}",
        "RUN_DIR": str(run_dir),
    }
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    return text


def start_nginx(conf_text: str, run_dir: Path) -> subprocess.Popen[bytes]:
    nginx = find_nginx()
    if nginx is None:
        raise FileNotFoundError("nginx is not installed")
    run_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / sub).mkdir(exist_ok=True)
    conf = run_dir / "nginx.conf"
    conf.write_text(conf_text)
    return subprocess.Popen(
        [nginx, "-p", str(run_dir), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=open(run_dir / "nginx.stderr.log", "ab"),
        start_new_session=True,
    )
