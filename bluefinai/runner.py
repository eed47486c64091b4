"""``bluefinai run``: the whole platform as local processes (no Docker).

Starts the websocket, agent and webhook services as gunicorn processes, nginx in front when an ``nginx``
binary exists, waits until all are healthy, prints the URLs, and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from bluefinai.nginx import (
    NGINX_TEMPLATE,
    check_nginx_conf,
    find_nginx,
    nginx_inputs,
    render_nginx_conf,
    start_nginx,
)
from bluefinai.processes import LogRotation, stop_process
from bluefinai.services import service_specs, start_service, wait_healthy
from shared.config import Settings
from shared.db import Database
from shared.schema import upgrade


@dataclass
class Stack:
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            stop_process(self.processes[name])

    def exited(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]


def nginx_conf(settings: Settings, overrides: dict[str, str] | None = None) -> str:
    """The local run's nginx configuration (``overrides``: other template inputs, e.g. WEBHOOK_RATE)."""
    return render_nginx_conf(nginx_inputs(settings, nginx_run_dir(settings)) | (overrides or {}))


def nginx_run_dir(settings: Settings) -> Path:
    return settings.data_dir / "nginx"


def start_stack(
    settings: Settings,
    env: dict[str, str],
    with_nginx: bool,
    reload: bool = False,
    nginx_overrides: dict[str, str] | None = None,
) -> Stack:
    """Start every service and wait for health; on failure stop what started and raise RuntimeError.

    The schema is upgraded first, once (`bluefinai db upgrade`): the services only check it. Each process's
    output goes to DATA_DIR/logs/NAME.log, rotated at LOG_MAX_MB keeping LOG_BACKUPS."""
    before, after = upgrade(Database(settings.database_url))
    if before != after:
        print(f"database schema upgraded: {before or 'empty'} -> {after}", flush=True)
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    rotation = LogRotation.of(settings)
    stack = Stack()
    try:
        for spec in service_specs(
            settings.agent_port, settings.webhook_port, settings.socket_port, settings.socket_workers
        ):
            log = log_dir / f"{spec.name}.log"
            process = start_service(spec, env, log, settings.bind_host, reload, rotation)
            stack.processes[spec.name] = process
            if not wait_healthy(spec.health_url, 60, process):
                raise RuntimeError(f"{spec.name} did not become healthy; see {log}")
        if with_nginx:
            log = log_dir / "nginx.log"
            nginx = start_nginx(nginx_conf(settings, nginx_overrides), nginx_run_dir(settings), log, rotation)
            stack.processes["nginx"] = nginx
            if not wait_healthy(f"http://127.0.0.1:{settings.nginx_port}/health", 15, nginx):
                raise RuntimeError(f"nginx did not start; see {log}")
    except BaseException:
        stack.stop()
        raise
    return stack


def port_problem(host: str, port: int) -> str:
    """Why a server could not listen on host:port ("" when it can)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn and nginx do
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "already in use (another program listens there)"
            if exc.errno == errno.EACCES:
                return "permission denied (ports below 1024 need root or the CAP_NET_BIND_SERVICE capability)"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"cannot listen on {host} (BIND_HOST is not an address of this machine)"
            return exc.strerror or str(exc)
    return ""


def file_problem(path: Path) -> str:
    """Why nginx could not read the file ("" when it can)."""
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except FileNotFoundError:
        return "does not exist"
    except IsADirectoryError:
        return "is a folder, not a file"
    except PermissionError:
        return "is not readable (permission denied)"
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def preflight(settings: Settings, with_nginx: bool) -> list[str]:
    """Every reason the run could not start, one line each (nothing is started to find them)."""
    problems: list[str] = []
    ports = [("AGENT_PORT", settings.agent_port), ("WEBHOOK_PORT", settings.webhook_port),
             ("SOCKET_PORT", settings.socket_port)]  # fmt: skip
    https = settings.nginx_https_port
    if with_nginx:
        ports.append(("NGINX_PORT", settings.nginx_port))
        if https is not None:
            ports.append(("NGINX_HTTPS_PORT", https))
    elif https is not None:
        problems.append(f"NGINX_HTTPS_PORT {https}: HTTPS needs nginx, which is not installed or not used")
    for name, port in ports:
        reason = port_problem(settings.bind_host, port)
        if reason:
            problems.append(f"{name} {port}: {reason}")
    if with_nginx and https is not None:
        files = [("TLS_CERT_FILE", settings.tls_cert_file), ("TLS_KEY_FILE", settings.tls_key_file)]
        if settings.webhook_require_tv_cert:
            files.append(("TV_CLIENT_CA_FILE", settings.tv_client_ca_file))
        for name, path in files:
            reason = file_problem(path) if path is not None else "is not set"
            if reason:
                problems.append(f"{name} {path}: {reason}")
    if with_nginx and not problems:
        try:
            refusal = check_nginx_conf(nginx_conf(settings), nginx_run_dir(settings))
        except ValueError as exc:
            refusal = str(exc)
        if refusal:
            problems.append(f"nginx refuses its configuration: {refusal}")
    return problems


def print_urls(settings: Settings, with_nginx: bool) -> None:
    token = settings.secret("api_token")
    https = settings.nginx_https_port if with_nginx else None
    if https is not None:
        front: str | None = f"https://127.0.0.1:{https}"
    else:
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
    if https is not None:
        print(
            f"              http://127.0.0.1:{settings.nginx_port} redirects to HTTPS; TradingView's "
            f"client certificate {'required' if settings.webhook_require_tv_cert else 'not required'}"
        )
    print(f"  api       : {api}   (Authorization: Bearer <API_TOKEN>)")
    print(f"  logs      : {settings.data_dir / 'logs'}")
    print("Press Ctrl-C to stop.", flush=True)


def run(settings: Settings, env_file: Path | None, use_nginx: bool = True, reload: bool = False) -> int:
    settings.require("webhook_passphrase", "api_token")
    env = dict(os.environ)
    env["BLUEFINAI_ENV_FILE"] = str(env_file) if env_file and env_file.exists() else ""
    with_nginx = use_nginx and find_nginx() is not None and NGINX_TEMPLATE.exists()
    if use_nginx and not with_nginx:
        print(
            "nginx not found: running without it (services are reachable on their own ports)", file=sys.stderr
        )
    problems = preflight(settings, with_nginx)
    if problems:
        print("cannot start:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    if with_nginx and settings.webhook_require_tv_cert and settings.nginx_https_port is None:
        print(
            "WEBHOOK_REQUIRE_TV_CERT=true without NGINX_HTTPS_PORT: nginx refuses every alert (TradingView's "
            "certificate comes only over HTTPS)",
            file=sys.stderr,
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
