"""start_production.sh against a fake `docker` (and `git`) that record every call and answer health and
positions: the TLS choice, and --update's order of restarts and its care with the agent."""

from __future__ import annotations

import itertools
import os
import pty
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.deploy.compose_model import ROOT, SHELL_TOOLS, tool_path, write_fake

FAKE_DOCKER = r"""
line="$*"; echo "docker ${line//$'\n'/ }" >> "$CALLS"
case " $* " in
  " compose version "* | " info "*) exit 0 ;;
  *" ps --all --format {{.State}} agent "*) echo "${FAKE_AGENT_STATE-running}"; exit 0 ;;
  *" ps --all --format {{.Health}} "*)
    service=${*: -1}; var="FAKE_HEALTH_$service"; echo "${!var:-healthy}"; exit 0 ;;
  *" exec -T agent python -c "*)
    [ "$FAKE_POSITIONS" != fail ] || exit 1; echo "$FAKE_POSITIONS"; exit 0 ;;
  *" exec -T nginx test -s "*) exit 0 ;;
esac
exit 0
"""
FAKE_GIT = r"""
echo "git $*" >> "$CALLS"
case $1 in
  rev-parse) exit 0 ;;
  pull) exit "${FAKE_GIT_PULL_RC:-0}" ;;
esac
"""


def checkout(tmp_path: Path, env_lines: str, key_mode: int = 0o644) -> Path:
    """A copy of what start_production.sh uses, with a .env and a certificate pair."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "start_production.sh", tmp_path)
    for script in ("docker_preflight.sh", "dotenv.sh", "service_env.sh"):
        shutil.copy(ROOT / "scripts" / script, tmp_path / "scripts")
    for name, mode in (("cert.pem", 0o644), ("key.pem", key_mode)):
        (tmp_path / name).write_text("PEM\n")
        (tmp_path / name).chmod(mode)
    secrets = "API_TOKEN=token-1234567890\nWEBHOOK_PASSPHRASE=passphrase-123456\nBLUEFIN_PRIVATE_KEY=0xabc\n"
    (tmp_path / ".env").write_text(secrets + env_lines)
    bindir = tmp_path / "bin"
    tool_path(bindir, SHELL_TOOLS)
    write_fake(bindir, "docker", FAKE_DOCKER)
    write_fake(bindir, "git", FAKE_GIT)
    return tmp_path


OWN_FILES = "TLS_CERT_FILE=./cert.pem\nTLS_KEY_FILE=./key.pem\n"


def run(
    repo: Path, *args: str, tty_answer: str | None = None, **fake: str
) -> tuple[int, str, str, list[str]]:
    env = {"PATH": str(repo / "bin"), "CALLS": str(repo / "calls"), "FAKE_POSITIONS": "0", **fake}
    command = ["/bin/bash", str(repo / "start_production.sh"), *args]
    if tty_answer is None:
        result = subprocess.run(command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        code, out, err = result.returncode, result.stdout, result.stderr
    else:
        master, slave = pty.openpty()
        try:
            os.write(master, tty_answer.encode() + b"\n")
            proc = subprocess.Popen(
                command, env=env, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            out_b, err_b = proc.communicate(timeout=60)
            code, out, err = proc.returncode, out_b.decode(), err_b.decode()
        finally:
            os.close(master)
            os.close(slave)
    calls_file = repo / "calls"
    calls = calls_file.read_text().splitlines() if calls_file.exists() else []
    return code, out, err, calls


def ups(calls: list[str]) -> list[str]:
    """The services brought up one by one, in order."""
    return [c.split(" up -d --no-deps ", 1)[1] for c in calls if " up -d --no-deps " in c]


def test_update_pulls_rebuilds_and_restarts_one_at_a_time_agent_last_when_flat(tmp_path: Path) -> None:
    repo = checkout(tmp_path, OWN_FILES)
    code, out, err, calls = run(repo, "--update")
    assert code == 0, err
    assert calls.index("git pull --ff-only") < calls.index(
        "docker compose -f docker-compose.yml pull --ignore-buildable"
    )
    assert calls.index("docker compose -f docker-compose.yml pull --ignore-buildable") < calls.index(
        "docker compose -f docker-compose.yml build --pull"
    )
    assert ups(calls) == ["websocket", "webhook", "nginx", "autoheal watchtower", "agent"]
    # the schema first, after the build, before any restart
    migrate_at = calls.index("docker compose -f docker-compose.yml run --rm --no-deps migrate")
    assert calls.index("docker compose -f docker-compose.yml build --pull") < migrate_at
    assert migrate_at < calls.index("docker compose -f docker-compose.yml up -d --no-deps websocket")
    # each of ours is healthy before the next one is touched
    compose = "docker compose -f docker-compose.yml"
    order = ["websocket", "webhook", "nginx", "autoheal watchtower"]
    for service, following in itertools.pairwise(order):
        up_at = calls.index(f"{compose} up -d --no-deps {service}")
        health_at = calls.index(f"{compose} ps --all --format {{{{.Health}}}} {service}")
        assert up_at < health_at < calls.index(f"{compose} up -d --no-deps {following}")
    positions_at = next(i for i, c in enumerate(calls) if "exec -T agent python -c" in c)
    assert "/api/positions" in calls[positions_at] and "API_TOKEN" in calls[positions_at]
    assert positions_at < calls.index("docker compose -f docker-compose.yml up -d --no-deps agent")
    assert "no open position" in out and "update done" in out
    # the pulled version of the script ran the update
    assert sum(c.startswith("git pull") for c in calls) == 1


def test_update_leaves_the_agent_alone_with_open_positions_when_nobody_can_confirm(tmp_path: Path) -> None:
    code, _, err, calls = run(checkout(tmp_path, OWN_FILES), "--update", FAKE_POSITIONS="2")
    assert code == 0
    assert ups(calls) == ["websocket", "webhook", "nginx", "autoheal watchtower"]
    assert "agent not restarted: the agent holds 2 open position(s)" in err and "--force-agent" in err


@pytest.mark.parametrize(("answer", "restarted"), [("n", False), ("", False), ("y", True)])
def test_update_asks_before_restarting_an_agent_with_open_positions(
    tmp_path: Path, answer: str, restarted: bool
) -> None:
    code, out, _, calls = run(
        checkout(tmp_path, OWN_FILES), "--update", tty_answer=answer, FAKE_POSITIONS="1"
    )
    assert code == 0
    assert "1 open position(s)" in out and "Restart the agent now? [y/N]" in out
    assert ("agent" in ups(calls)) is restarted


def test_update_with_force_agent_restarts_it_with_positions_open(tmp_path: Path) -> None:
    code, out, _, calls = run(checkout(tmp_path, OWN_FILES), "--update", "--force-agent", FAKE_POSITIONS="3")
    assert code == 0 and ups(calls)[-1] == "agent" and "--force-agent" in out


def test_an_agent_that_does_not_answer_is_not_taken_for_flat(tmp_path: Path) -> None:
    code, _, err, calls = run(checkout(tmp_path, OWN_FILES), "--update", FAKE_POSITIONS="fail")
    assert code == 0 and "agent" not in ups(calls)
    assert "did not answer how many positions" in err


@pytest.mark.parametrize("state", ["exited", ""])
def test_an_agent_that_is_not_running_is_started_without_asking(tmp_path: Path, state: str) -> None:
    code, out, _, calls = run(
        checkout(tmp_path, OWN_FILES), "--update", FAKE_POSITIONS="2", FAKE_AGENT_STATE=state
    )
    assert code == 0 and ups(calls)[-1] == "agent"
    assert "the agent is not running" in out
    assert not any("exec -T agent" in c for c in calls)


def test_update_stops_at_the_first_service_that_is_not_healthy(tmp_path: Path) -> None:
    code, _, err, calls = run(checkout(tmp_path, OWN_FILES), "--update", FAKE_HEALTH_webhook="unhealthy")
    assert code == 1
    assert ups(calls) == ["websocket", "webhook"]
    assert "webhook is unhealthy" in err


def test_update_restarts_nothing_when_the_schema_upgrade_fails(tmp_path: Path) -> None:
    repo = checkout(tmp_path, OWN_FILES)
    write_fake(
        repo / "bin",
        "docker",
        'case " $* " in *" run --rm --no-deps migrate "*) exit 1 ;; esac\n' + FAKE_DOCKER,
    )
    code, _, err, calls = run(repo, "--update")
    assert code == 1 and "schema upgrade failed: nothing was restarted" in err
    assert ups(calls) == []


def test_update_stops_when_git_cannot_fast_forward(tmp_path: Path) -> None:
    code, _, err, calls = run(checkout(tmp_path, OWN_FILES), "--update", FAKE_GIT_PULL_RC="1")
    assert code == 1 and "git pull --ff-only failed" in err
    assert not any(c.startswith("docker compose") and " build" in c for c in calls)


def test_start_refuses_without_tls_and_explains_both_ways(tmp_path: Path) -> None:
    code, _, err, calls = run(checkout(tmp_path, ""))
    assert code == 1
    assert "TLS_CERT_FILE" in err and "ACME_DOMAIN" in err and "ACME_EMAIL" in err and "443" in err
    assert not any(" up " in c for c in calls)


@pytest.mark.parametrize(
    ("env_lines", "message"),
    [
        ("TLS_CERT_FILE=./cert.pem\nACME_DOMAIN=t.example\n", "and ACME_DOMAIN are set in .env: keep one"),
        ("TLS_CERT_FILE=./cert.pem\n", "TLS_KEY_FILE (its private key, PEM) is not"),
        ("TLS_CERT_FILE=./nope.pem\nTLS_KEY_FILE=./key.pem\n", "./nope.pem (from .env) does not exist"),
        ("ACME_DOMAIN=t.example\n", "ACME_EMAIL is not"),
        (
            OWN_FILES + "TV_CLIENT_CA_FILE=/nowhere/ca.pem\n",
            "TV_CLIENT_CA_FILE=/nowhere/ca.pem (from .env) does not",
        ),
    ],
)
def test_start_names_what_is_wrong_with_the_tls_settings(
    tmp_path: Path, env_lines: str, message: str
) -> None:
    code, _, err, calls = run(checkout(tmp_path, env_lines))
    assert code == 1 and message in err, err
    assert not any(" up " in c for c in calls)


def test_start_refuses_without_the_passphrase_and_the_token(tmp_path: Path) -> None:
    repo = checkout(tmp_path, OWN_FILES)
    (repo / ".env").write_text("WEBHOOK_PASSPHRASE=\n" + OWN_FILES)
    code, _, err, calls = run(repo)
    assert code == 1
    assert "WEBHOOK_PASSPHRASE is empty in .env" in err and "API_TOKEN is empty in .env" in err
    assert not any(" up " in c for c in calls)


def test_a_key_nginx_cannot_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    if os.getuid() == 101 or os.getgid() == 101:
        pytest.skip("the test user is nginx's uid/gid")
    code, _, err, _ = run(checkout(tmp_path, OWN_FILES, key_mode=0o600))
    assert code == 1 and "./key.pem cannot be read by nginx" in err and "sudo chgrp 101 ./key.pem" in err


def test_start_with_own_files_writes_the_env_files_and_starts(tmp_path: Path) -> None:
    repo = checkout(tmp_path, OWN_FILES)
    code, out, err, calls = run(repo)
    assert code == 0, err
    assert calls[-1] == "docker compose -f docker-compose.yml up -d --build"
    assert "BLUEFIN_PRIVATE_KEY" not in (repo / ".deploy/webhook.env").read_text()
    assert "BLUEFIN_PRIVATE_KEY=0xabc" in (repo / ".deploy/agent.env").read_text()
    assert "./healthcheck.sh --docker" in out


def test_lets_encrypt_runs_with_its_profile_and_picks_the_certificate_up(tmp_path: Path) -> None:
    repo = checkout(tmp_path, "ACME_DOMAIN=t.example\nACME_EMAIL=me@t.example\nNGINX_PORT=80\n")
    code, out, err, calls = run(repo)
    assert code == 0, err
    assert "docker compose -f docker-compose.yml --profile letsencrypt up -d --build" in calls
    assert any("exec -T nginx test -s /etc/letsencrypt/live/t.example/fullchain.pem" in c for c in calls)
    assert "https://t.example/" in out
    code, _, err, calls = run(repo, "--update")
    assert code == 0, err
    assert "autoheal watchtower certbot" in ups(calls)
