"""How each service runs as a real process (gunicorn), and how to wait until it is healthy.

Used by ``bluefinai run`` and by the integration and end-to-end tests, so both start services the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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
    rotation: LogRotation | None = None,
) -> subprocess.Popen[bytes]:
    """Start one service in its own process group; its output goes to ``log_path`` (rotated by size when
    ``rotation`` is given)."""
    return _spawn(gunicorn_command(spec, bind_host, reload), env, log_path, rotation)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it does not exit in time."""
    try:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(5)
    except ProcessLookupError:
        pass
    finally:
        pump = _PUMPS.pop(process, None)
        if pump is not None:
            pump.join(5)  # the rest of its output reaches the log


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


# --- nginx: one template for the local run and the Docker image (nginx/entrypoint.sh renders it there) ---

NGINX_TEMPLATE = PROJECT_ROOT / "nginx" / "nginx.conf.template"
# What the template reads, as the nginx container's environment variables (the entrypoint's inputs).
NGINX_INPUTS = (
    "HTTP_PORT", "HTTPS_PORT", "PUBLIC_HTTPS_PORT", "TLS_CERT", "TLS_KEY", "TV_CLIENT_CA",
    "WEBHOOK_REQUIRE_TV_CERT", "WEBHOOK_ALLOWED_IPS", "AGENT_ADDR", "WEBHOOK_ADDR", "SOCKET_ADDR",
    "ACME_ROOT", "RUN_DIR", "WEBHOOK_RATE", "WEBHOOK_BURST",
)  # fmt: skip
# The ${NAME} placeholders (the entrypoint's envsubst list): the inputs less the two that pick lines
# (WEBHOOK_REQUIRE_TV_CERT, WEBHOOK_ALLOWED_IPS), plus WEBHOOK_ACCESS made from the allowed addresses.
NGINX_TEMPLATE_VARS = (
    "HTTP_PORT", "HTTPS_PORT", "PUBLIC_HTTPS_PORT", "TLS_CERT", "TLS_KEY", "TV_CLIENT_CA",
    "AGENT_ADDR", "WEBHOOK_ADDR", "SOCKET_ADDR", "ACME_ROOT", "RUN_DIR", "WEBHOOK_RATE", "WEBHOOK_BURST",
    "WEBHOOK_ACCESS",
)  # fmt: skip
NGINX_DEFAULTS = {"PUBLIC_HTTPS_PORT": "443", "WEBHOOK_RATE": "20r/s", "WEBHOOK_BURST": "40"}
TRUE_WORDS = ("1", "true", "yes", "on")
_UNSAFE = re.compile(r'["$;{}\s]')
_NETWORK = re.compile(r"^[0-9A-Fa-f.:/]+$")
_PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")


def nginx_inputs(settings: Settings, run_dir: Path) -> dict[str, str]:
    """The template's inputs for ``bluefinai run``: nginx on BIND_HOST in front of the local services."""
    host = settings.bind_host
    https = settings.nginx_https_port
    return {
        "HTTP_PORT": f"{host}:{settings.nginx_port}",
        "HTTPS_PORT": f"{host}:{https}" if https else "",
        "PUBLIC_HTTPS_PORT": str(https or ""),
        "TLS_CERT": str(settings.tls_cert_file or ""),
        "TLS_KEY": str(settings.tls_key_file or ""),
        "TV_CLIENT_CA": str(settings.tv_client_ca_file),
        "WEBHOOK_REQUIRE_TV_CERT": "true" if settings.webhook_require_tv_cert else "false",
        "WEBHOOK_ALLOWED_IPS": ",".join(settings.webhook_allowed_ips),
        "AGENT_ADDR": f"127.0.0.1:{settings.agent_port}",
        "WEBHOOK_ADDR": f"127.0.0.1:{settings.webhook_port}",
        "SOCKET_ADDR": f"127.0.0.1:{settings.socket_port}",
        "ACME_ROOT": str(settings.data_dir / "acme"),
        "RUN_DIR": str(run_dir),
    }


def render_nginx_conf(inputs: Mapping[str, str], template: Path = NGINX_TEMPLATE) -> str:
    """Fill the template the way nginx/entrypoint.sh does (a test checks both give the same text).

    Raises ValueError naming the input when a value would change the configuration's syntax."""
    values = {name: inputs.get(name, "") or NGINX_DEFAULTS.get(name, "") for name in NGINX_INPUTS}
    for name, value in values.items():
        if name != "WEBHOOK_ALLOWED_IPS" and _UNSAFE.search(value):
            raise ValueError(f'{name}: {value!r} holds a space or one of " $ ; {{ }}')
    networks = values["WEBHOOK_ALLOWED_IPS"].replace(",", " ").split()
    for network in networks:
        if not _NETWORK.match(network):
            raise ValueError(f"WEBHOOK_ALLOWED_IPS: {network!r} is not an address or network")
    values["WEBHOOK_ACCESS"] = "".join(f"allow {n}; " for n in networks) + "deny all;" if networks else ""
    https = bool(values["HTTPS_PORT"])
    tv_cert = values["WEBHOOK_REQUIRE_TV_CERT"].lower() in TRUE_WORDS
    lines = []
    for line in template.read_text().splitlines(keepends=True):
        if "#[https]" in line:
            if not https:
                continue
            line = re.sub(r"#\[https\] *", "", line)
        if "#[tvcert]" in line:
            if not tv_cert:
                continue
            line = re.sub(r"#\[tvcert\] *", "", line)
        lines.append(line)
    return _PLACEHOLDER.sub(lambda m: values[m[1]] if m[1] in NGINX_TEMPLATE_VARS else m[0], "".join(lines))


def _prepare_run_dir(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / sub).mkdir(exist_ok=True)


def check_nginx_conf(conf_text: str, run_dir: Path) -> str:
    """``nginx -t`` on the configuration: "" when nginx accepts it, else nginx's own words."""
    nginx = find_nginx()
    if nginx is None:
        return "nginx is not installed"
    _prepare_run_dir(run_dir)
    conf = run_dir / "nginx.test.conf"
    conf.write_text(conf_text)
    result = subprocess.run(
        [nginx, "-t", "-q", "-e", "stderr", "-p", str(run_dir), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode == 0:
        return ""
    lines = [
        re.sub(r"^(nginx: )?(\S+ \S+ )?\[emerg\] (\d+#\d+: )?", "", line)
        for line in result.stderr.splitlines()
        if "[emerg]" in line
    ]
    return "; ".join(lines) or result.stderr.strip() or f"nginx -t failed ({result.returncode})"


def start_nginx(
    conf_text: str, run_dir: Path, log_path: Path | None = None, rotation: LogRotation | None = None
) -> subprocess.Popen[bytes]:
    """nginx in the foreground; its error and access logs (stderr, stdout) go to ``log_path``
    (default RUN_DIR/nginx.log), rotated by size when ``rotation`` is given."""
    nginx = find_nginx()
    if nginx is None:
        raise FileNotFoundError("nginx is not installed")
    _prepare_run_dir(run_dir)
    conf = run_dir / "nginx.conf"
    conf.write_text(conf_text)
    command = [nginx, "-e", "stderr", "-p", str(run_dir), "-c", str(conf), "-g", "daemon off;"]
    return _spawn(command, None, log_path or run_dir / "nginx.log", rotation)


# --- logs of the local run: each process's output through a pipe into a file rotated by size ---


@dataclass(frozen=True)
class LogRotation:
    max_bytes: int
    backups: int

    @classmethod
    def of(cls, settings: Settings) -> LogRotation:
        return cls(max(1, int(settings.log_max_mb * 1024 * 1024)), settings.log_backups)


class RotatingLog:
    """Appends to ``path``; before a write would take it past ``max_bytes`` the file becomes ``path.1``
    (``path.1`` becomes ``path.2``, ... up to ``backups``; the oldest goes). With 0 backups it starts over."""

    def __init__(self, path: Path, rotation: LogRotation) -> None:
        self.path = path
        self.rotation = rotation
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close()
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.rotation.max_bytes:
            self._rotate()
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        backups = self.rotation.backups
        if backups > 0:
            for index in range(backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._size = 0

    def close(self) -> None:
        self._file.close()


LOG_LINE_MAX = 64 * 1024  # a longer line is written in pieces
_PUMPS: weakref.WeakKeyDictionary[subprocess.Popen[bytes], threading.Thread] = weakref.WeakKeyDictionary()


def pump_to_log(stream: IO[bytes], log: RotatingLog) -> threading.Thread:
    """A thread copying ``stream`` line by line into ``log`` until the end of the stream."""

    def _run() -> None:
        try:
            for line in iter(lambda: stream.readline(LOG_LINE_MAX), b""):
                log.write(line)
        finally:
            log.close()
            stream.close()

    thread = threading.Thread(target=_run, name=f"log:{log.path.name}", daemon=True)
    thread.start()
    return thread


def _spawn(
    command: list[str],
    env: Mapping[str, str] | None,
    log_path: Path | None,
    rotation: LogRotation | None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group (so it can be stopped with all its workers)."""
    if log_path is not None and rotation is not None:
        log = RotatingLog(log_path, rotation)
        process = subprocess.Popen(
            command,
            env=None if env is None else dict(env),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert process.stdout is not None
        _PUMPS[process] = pump_to_log(process.stdout, log)
        return process
    stdout = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    try:
        return subprocess.Popen(
            command,
            env=None if env is None else dict(env),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if not isinstance(stdout, int):
            stdout.close()
