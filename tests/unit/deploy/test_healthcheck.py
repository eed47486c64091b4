"""healthcheck.sh against the Docker stack (a fake `docker` answering `compose ps`), against a local run
(real HTTP on 127.0.0.1), its restarts and notifications, and --install-cron with a fake `crontab`."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.deploy.compose_model import ROOT, SHELL_TOOLS, tool_path, write_fake

FAKE_DOCKER = r"""
echo "docker $*" >> "$CALLS"
case " $* " in
  " compose version "* | " info "*) exit 0 ;;
  *" ps --all --format {{.Service}} {{.State}} {{.Health}} "*) printf '%s' "$FAKE_PS"; exit "${FAKE_PS_RC:-0}" ;;
  *" bluefinai notify "*) exit "${FAKE_NOTIFY_RC:-0}" ;;
esac
exit 0
"""
FAKE_CRONTAB = r"""
case $1 in
  -l) [ -f "$CRONTAB_FILE" ] || { echo "no crontab for you" >&2; exit 1; }; cat "$CRONTAB_FILE" ;;
  -r) rm -f "$CRONTAB_FILE" ;;
  -) cat > "$CRONTAB_FILE" ;;
esac
"""
HEALTHY = "agent running healthy\nwebhook running healthy\nwebsocket running healthy\nnginx running healthy\n"
TOOLS = (*SHELL_TOOLS, "curl", "python3")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "healthcheck.sh", tmp_path)
    for script in ("docker_preflight.sh", "dotenv.sh"):
        shutil.copy(ROOT / "scripts" / script, tmp_path / "scripts")
    (tmp_path / ".env").write_text("API_TOKEN=token-1234567890\n")
    tool_path(tmp_path / "bin", TOOLS)
    write_fake(tmp_path / "bin", "docker", FAKE_DOCKER)
    write_fake(tmp_path / "bin", "crontab", FAKE_CRONTAB)
    return tmp_path


def run(repo: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    base = {"PATH": str(repo / "bin"), "CALLS": str(repo / "calls"), "CRONTAB_FILE": str(repo / "crontab")}
    result = subprocess.run(
        ["/bin/bash", str(repo / "healthcheck.sh"), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
    )
    calls = (repo / "calls").read_text().splitlines() if (repo / "calls").exists() else []
    return result, calls


def test_docker_all_healthy(repo: Path) -> None:
    result, calls = run(repo, "--docker", FAKE_PS=HEALTHY)
    assert result.returncode == 0, result.stderr
    assert sum(line.startswith("ok ") for line in result.stdout.splitlines()) == 4
    assert "all services healthy" in result.stdout
    assert not any(" restart " in c or "notify" in c or " up " in c for c in calls)


def test_docker_a_starting_container_is_not_a_failure_and_quiet_prints_nothing(repo: Path) -> None:
    result, _ = run(
        repo,
        "--docker",
        "--quiet",
        FAKE_PS=HEALTHY.replace("agent running healthy", "agent running starting"),
    )
    assert result.returncode == 0 and result.stdout == ""


def test_docker_failures_are_restarted_and_reported(repo: Path) -> None:
    listing = "agent running unhealthy\nwebhook exited\nwebsocket running healthy\n"  # nginx: no container
    result, calls = run(repo, "--docker", "--restart", FAKE_PS=listing)
    assert result.returncode == 1
    assert "FAILED  agent      running, unhealthy" in result.stdout
    assert "FAILED  webhook    exited" in result.stdout and "FAILED  nginx      missing" in result.stdout
    assert "ok      websocket" in result.stdout
    compose = "docker compose -f docker-compose.yml"
    assert f"{compose} restart agent" in calls and f"{compose} restart webhook" in calls
    assert f"{compose} up -d --no-deps nginx" in calls
    assert f"{compose} restart websocket" not in calls
    # reported from the one service still up, with what failed and what was done
    notify = [c for c in calls if "bluefinai notify" in c]
    assert len(notify) == 1 and notify[0].startswith(f"{compose} exec -T websocket bluefinai notify")
    assert "--event service_down" in notify[0]
    assert "agent: running, unhealthy" in notify[0] and "Restarted: agent webhook nginx" in notify[0]
    assert "unhealthy: agent: running, unhealthy; webhook: exited; nginx: missing" in result.stderr


def test_docker_without_restart_only_reports(repo: Path) -> None:
    result, calls = run(
        repo, "--docker", FAKE_PS=HEALTHY.replace("webhook running healthy", "webhook restarting")
    )
    assert result.returncode == 1
    assert not any(" restart " in c or " up " in c for c in calls)
    notify = [c for c in calls if "bluefinai notify" in c]
    assert notify and " exec -T agent " in notify[0] and "webhook: restarting" in notify[0]


def test_a_notification_that_cannot_be_sent_falls_back_to_stderr(repo: Path) -> None:
    listing = HEALTHY.replace("agent running healthy", "agent exited")
    result, calls = run(repo, "--docker", FAKE_PS=listing, FAKE_NOTIFY_RC="1")
    assert result.returncode == 1
    assert "notification not sent" in result.stderr and "unhealthy: agent: exited" in result.stderr
    # tried every running service but the failed one
    tried = [c.split(" exec -T ")[1].split()[0] for c in calls if "bluefinai notify" in c]
    assert tried == ["webhook", "websocket"]


def test_docker_when_compose_cannot_list_everything_fails(repo: Path) -> None:
    result, _ = run(repo, "--docker", FAKE_PS="Cannot connect to the Docker daemon", FAKE_PS_RC="1")
    assert result.returncode == 1 and result.stdout.count("FAILED") == 4
    assert "docker compose ps failed" in result.stderr


def test_docker_mode_names_a_missing_docker(repo: Path) -> None:
    (repo / "bin" / "docker").unlink()
    result, _ = run(repo, "--docker")
    assert result.returncode == 1 and "cannot check the Docker stack" in result.stderr
    assert "docker is not installed" in result.stderr


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_mode_uses_the_env_ports_and_notifies_through_the_cli(repo: Path, health_server: int) -> None:
    dead = closed_port()
    (repo / ".env").write_text(
        f"AGENT_PORT={health_server}\nWEBHOOK_PORT={dead}\nSOCKET_PORT={health_server}\nNGINX_PORT={health_server}\n"
    )
    write_fake(repo / "bin", "bluefinai", 'echo "bluefinai $*" >> "$CALLS"\n')
    result, calls = run(repo, "--restart")
    assert result.returncode == 1
    assert f"FAILED  webhook    http://127.0.0.1:{dead}/health" in result.stdout
    assert sum(line.startswith("ok ") for line in result.stdout.splitlines()) == 3
    assert "the local run restarts nothing by itself" in result.stderr
    assert len(calls) == 1 and calls[0].startswith("bluefinai notify --event service_down ")
    assert f"webhook: http://127.0.0.1:{dead}/health does not answer 200" in calls[0]


def test_local_mode_without_the_cli_reports_on_stderr(repo: Path, health_server: int) -> None:
    (repo / ".env").write_text(f"AGENT_PORT={closed_port()}\n")
    result, _ = run(repo, "--quiet", NGINX_URL="skip", WEBHOOK_URL=f"http://127.0.0.1:{health_server}",
                    SOCKET_URL=f"http://127.0.0.1:{health_server}")  # fmt: skip
    assert result.returncode == 1 and not any(line.startswith("ok ") for line in result.stdout.splitlines())
    assert "unhealthy: agent" in result.stderr and "notification not sent" in result.stderr


def test_install_cron_leaves_one_line_and_keeps_the_others(repo: Path) -> None:
    (repo / "crontab").write_text("0 3 * * * /usr/local/bin/backup\n")
    for _ in range(2):
        result, _ = run(repo, "--install-cron")
        assert result.returncode == 0, result.stderr
    lines = (repo / "crontab").read_text().splitlines()
    assert lines[0] == "0 3 * * * /usr/local/bin/backup"
    ours = [line for line in lines if "bluefinai-healthcheck" in line]
    assert len(lines) == 2 and len(ours) == 1
    assert ours[0].startswith(f"*/5 * * * * cd {repo} && ./healthcheck.sh --docker --restart --quiet ")
    # the options given replace the default ones, still one line
    run(repo, "--local", "--quiet", "--install-cron")
    ours = [line for line in (repo / "crontab").read_text().splitlines() if "bluefinai-healthcheck" in line]
    assert len(ours) == 1 and "./healthcheck.sh --local --quiet >>" in ours[0]


def test_the_installed_line_runs_and_logs(repo: Path) -> None:
    run(repo, "--install-cron")
    line = (repo / "crontab").read_text().splitlines()[-1]
    command = line.split(" ", 5)[5]  # after the five schedule fields
    env = {
        "PATH": str(repo / "bin"),
        "CALLS": str(repo / "calls"),
        "FAKE_PS": HEALTHY.replace("nginx running healthy", ""),
    }
    subprocess.run(["/bin/bash", "-c", command], env=env, cwd="/", check=False)
    log = (repo / ".deploy" / "healthcheck.log").read_text()
    assert "FAILED  nginx" in log and not any(line.startswith("ok ") for line in log.splitlines())  # --quiet
    assert "docker compose -f docker-compose.yml up -d --no-deps nginx" in (repo / "calls").read_text()


def test_uninstall_cron_removes_only_our_line(repo: Path) -> None:
    (repo / "crontab").write_text("0 3 * * * /usr/local/bin/backup\n")
    run(repo, "--install-cron")
    result, _ = run(repo, "--uninstall-cron")
    assert result.returncode == 0
    assert (repo / "crontab").read_text() == "0 3 * * * /usr/local/bin/backup\n"
    (repo / "crontab").unlink()
    run(repo, "--install-cron")
    run(repo, "--uninstall-cron")
    assert not (repo / "crontab").exists()


def test_install_cron_without_crontab_says_what_to_install(repo: Path) -> None:
    (repo / "bin" / "crontab").unlink()
    result, _ = run(repo, "--install-cron")
    assert result.returncode == 1 and "crontab is not installed" in result.stderr
