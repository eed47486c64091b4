"""``bluefinai run``: the whole platform as local processes (no Docker).

Starts the websocket, agent and webhook services as gunicorn processes, nginx in front when an ``nginx``
binary exists, waits until all are healthy, prints the URLs, and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from agent.services import (
    find_nginx,
    render_local_nginx_conf,
    service_specs,
    start_nginx,
    start_service,
    stop_process,
    wait_healthy,
)
from shared.config import PROJECT_ROOT, Settings
from shared.db import Database

NGINX_TEMPLATE = PROJECT_ROOT / "nginx" / "nginx.local.conf.template"


@dataclass
class Stack:
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            stop_process(self.processes[name])

    def exited(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]


def start_stack(settings: Settings, env: dict[str, str], with_nginx: bool, reload: bool = False) -> Stack:
    """Start every service and wait for health; on failure stop what started and raise RuntimeError."""
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack()
    try:
        for spec in service_specs(settings.agent_port, settings.webhook_port, settings.socket_port):
            process = start_service(spec, env, log_dir / f"{spec.name}.log", settings.bind_host, reload)
            stack.processes[spec.name] = process
            if not wait_healthy(spec.health_url, 60, process):
                raise RuntimeError(
                    f"{spec.name} did not become healthy; see {log_dir / (spec.name + '.log')}"
                )
        if with_nginx:
            run_dir = settings.data_dir / "nginx"
            conf = render_local_nginx_conf(
                NGINX_TEMPLATE, settings.nginx_port, settings.agent_port, settings.webhook_port,
                settings.socket_port, run_dir,
            )  # fmt: skip
            nginx = start_nginx(conf, run_dir)
            stack.processes["nginx"] = nginx
            if not wait_healthy(f"http://127.0.0.1:{settings.nginx_port}/health", 15, nginx):
                raise RuntimeError(f"nginx did not start; see {run_dir / 'nginx.stderr.log'}")
    except BaseException:
        stack.stop()
        raise
    return stack


def print_urls(settings: Settings, with_nginx: bool) -> None:
    token = settings.secret("api_token")
    front = f"http://127.0.0.1:{settings.nginx_port}" if with_nginx else None
    dashboard = front or f"http://127.0.0.1:{settings.socket_port}"
    webhook = f"{front}/webhook" if front else f"http://127.0.0.1:{settings.webhook_port}/webhook"
    api = f"{front}/api/status" if front else f"http://127.0.0.1:{settings.agent_port}/api/status"
    print(
        f"BluefinAI Trader is running ({settings.trading_mode} mode, "
        f"{settings.market_data_source} market data)"
    )
    print(f"  dashboard : {dashboard}/#token={token}")
    print(f"  webhook   : POST {webhook}   (TradingView alert JSON with your WEBHOOK_PASSPHRASE)")
    print(f"  api       : {api}   (Authorization: Bearer <API_TOKEN>)")
    print(f"  logs      : {settings.data_dir / 'logs'}")
    print("Press Ctrl-C to stop.", flush=True)


def run(settings: Settings, env_file: Path | None, use_nginx: bool = True, reload: bool = False) -> int:
    settings.require("webhook_passphrase", "api_token")
    Database(settings.database_url).migrate()
    env = dict(os.environ)
    env["BLUEFINAI_ENV_FILE"] = str(env_file) if env_file and env_file.exists() else ""
    with_nginx = use_nginx and find_nginx() is not None and NGINX_TEMPLATE.exists()
    if use_nginx and not with_nginx:
        print(
            "nginx not found: running without it (services are reachable on their own ports)", file=sys.stderr
        )
    stopping = False

    def _stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    stack = start_stack(settings, env, with_nginx, reload)
    print_urls(settings, with_nginx)
    try:
        while not stopping:
            dead = stack.exited()
            if dead:
                print(f"stopped unexpectedly: {', '.join(dead)}; shutting down", file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        stack.stop()
        print("stopped", flush=True)
    return 0
