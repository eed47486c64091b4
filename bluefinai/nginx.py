"""nginx for ``bluefinai run``: the one template it shares with the Docker image (``nginx/entrypoint.sh``
renders the same text there), the template's inputs from the settings, ``nginx -t`` and the process.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from bluefinai.processes import LogRotation, spawn
from shared.config import PROJECT_ROOT, Settings


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


# one template for the local run and the Docker image (nginx/entrypoint.sh renders it there) ---

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
    return spawn(command, None, log_path or run_dir / "nginx.log", rotation)
