"""Policy of docker-compose.yml, checked statically (no Docker engine here): hardening of every container,
ports from .env, only nginx published, watchtower only on registry images, secrets per service, TLS modes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.config import SECRET_FIELDS
from tests.unit.deploy.compose_model import ROOT, load_compose

APPS = ("agent", "webhook", "websocket")
OURS = (*APPS, "nginx")  # built here, long-running
ONE_SHOT = ("migrate",)  # built here, runs once before the services
THIRD_PARTY = ("certbot", "autoheal", "watchtower", "redis")  # from a registry
ROOT_ALLOWED = {"certbot", "autoheal", "watchtower"}  # docker.sock holders, and certbot's chgrp
PORTS = {"AGENT_PORT": "6103", "WEBHOOK_PORT": "6104", "SOCKET_PORT": "6108"}
SECRET_NAMES = {name.upper() for name in SECRET_FIELDS}
WATCHTOWER = "com.centurylinklabs.watchtower.enable"


def services(env: dict[str, str] | None = None) -> dict[str, Any]:
    return load_compose("docker-compose.yml", env or {})["services"]


@pytest.mark.parametrize("name", sorted((*OURS, *ONE_SHOT, *THIRD_PARTY)))
def test_every_container_is_hardened(name: str) -> None:
    service = services()[name]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert re.fullmatch(r"\d+[mg]", service["mem_limit"]), service.get("mem_limit")
    assert isinstance(service["pids_limit"], int) and 0 < service["pids_limit"] <= 512
    assert service["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5"}}
    assert any(t.split(":")[0] == "/tmp" for t in service["tmpfs"]), "a read-only root needs a writable /tmp"
    assert service["restart"] == ("no" if name in ONE_SHOT else "unless-stopped")
    assert "privileged" not in service and service.get("network_mode") != "host"


def test_containers_run_as_their_own_users_and_root_only_where_the_job_needs_it() -> None:
    all_services = services()
    for name in (*APPS, *ONE_SHOT):
        assert all_services[name]["user"] == "10001:10001"
    assert all_services["nginx"]["user"] == "101:101"
    # the certificate files are handed to nginx's group: the same 101
    assert "chgrp -R 101 " in all_services["certbot"]["command"][0]
    for name, service in all_services.items():
        uid = service["user"].split(":")[0]
        assert uid != "0" or name in ROOT_ALLOWED, f"{name} runs as root"
        assert set(service.get("cap_add", [])) <= ({"CHOWN"} if name == "certbot" else set()), name


def test_only_the_updaters_see_the_docker_socket_and_read_only() -> None:
    for name, service in services().items():
        socket_mounts = [v for v in service.get("volumes", []) if v.startswith("/var/run/docker.sock")]
        if name in ("autoheal", "watchtower"):
            assert socket_mounts == ["/var/run/docker.sock:/var/run/docker.sock:ro"], name
        else:
            assert socket_mounts == [], name
    # autoheal needs no network at all; watchtower and certbot reach registries/ACME, not our services
    all_services = services()
    assert all_services["autoheal"]["network_mode"] == "none"
    for name in ("watchtower", "certbot"):
        assert "bluefinai-network" not in all_services[name]["networks"]


def test_only_nginx_publishes_ports_and_they_follow_env() -> None:
    for name, service in services().items():
        assert ("ports" in service) == (name == "nginx"), name
    assert services()["nginx"]["ports"] == ["80:8080", "443:8443"]
    published = services({"NGINX_PORT": "8081", "NGINX_HTTPS_PORT": "8444"})["nginx"]["ports"]
    assert published == ["8081:8080", "8444:8443"]
    assert services({"NGINX_HTTPS_PORT": "8444"})["nginx"]["environment"]["PUBLIC_HTTPS_PORT"] == "8444"


def test_service_ports_come_from_env_everywhere() -> None:
    resolved = services(PORTS)
    port_of = {"agent": "6103", "webhook": "6104", "websocket": "6108"}
    for name in APPS:
        service = resolved[name]
        assert service["expose"] == [port_of[name]]
        assert f"http://127.0.0.1:{port_of[name]}/health" in " ".join(service["healthcheck"]["test"])
        assert service["environment"]["AGENT_URL"] == "http://agent:6103"
        assert service["environment"]["SOCKET_URL"] == "http://websocket:6108"
        assert {service["environment"][k] for k in PORTS} == set(PORTS.values())
    nginx = resolved["nginx"]["environment"]
    assert (nginx["AGENT_ADDR"], nginx["WEBHOOK_ADDR"], nginx["SOCKET_ADDR"]) == (
        "agent:6103",
        "webhook:6104",
        "websocket:6108",
    )
    # no default port survives anywhere once .env names others
    text = json.dumps(resolved)
    for default in ("5003", "5004", "5008"):
        assert default not in text, default


def test_watchtower_updates_only_registry_images_and_ours_are_never_pulled() -> None:
    all_services = services()
    for name in OURS:
        service = all_services[name]
        assert service["labels"][WATCHTOWER] == "false", name
        assert service["pull_policy"] == "build" and "build" in service, name
        # no registry namespace could be mistaken for it
        assert service["image"] == f"bluefinai-local/{name}:latest", name
    migrate = all_services["migrate"]
    assert (
        migrate["image"] == "bluefinai-local/agent:latest"
        and migrate["build"] == all_services["agent"]["build"]
    )
    assert migrate["labels"][WATCHTOWER] == "false" and migrate["pull_policy"] == "build"
    for name in THIRD_PARTY:
        service = all_services[name]
        assert service["labels"][WATCHTOWER] == "true", name
        assert "build" not in service
        tag = service["image"].rsplit(":", 1)[-1]
        assert ":" in service["image"] and tag != "latest" and re.search(r"\d", tag), service["image"]
    assert "--label-enable" in all_services["watchtower"]["command"]


def test_an_unhealthy_container_of_ours_is_restarted_by_autoheal() -> None:
    all_services = services()
    autoheal = all_services["autoheal"]
    label = autoheal["environment"]["AUTOHEAL_CONTAINER_LABEL"]
    for name in OURS:
        assert all_services[name]["labels"][label] == "true", name
    for name in APPS:
        assert all_services[name]["healthcheck"]["retries"] >= 1
    # nginx's healthcheck is its image's
    nginx_stage = (ROOT / "Dockerfile").read_text().split("AS nginx", 1)[1]
    assert re.search(r"^HEALTHCHECK ", nginx_stage, re.M)


def test_each_service_reads_only_its_own_env_file_and_nginx_none() -> None:
    for name, service in services().items():
        environment = service.get("environment", {})
        assert not SECRET_NAMES & set(environment), f"{name} gets a secret in docker-compose.yml itself"
        if name in APPS:
            assert service["env_file"] == f".deploy/{name}.env"
            assert environment["BLUEFINAI_SERVICE"] == name
        elif name == "migrate":  # the database only: the webhook's file has no exchange or AI key
            assert (
                service["env_file"] == ".deploy/webhook.env" and environment["BLUEFINAI_SERVICE"] == "webhook"
            )
        else:
            assert "env_file" not in service, name
    dev = load_compose("docker-compose.dev.yml")["services"]
    assert all("env_file" not in s for s in dev.values())


def test_tls_with_your_own_files() -> None:
    env = {"TLS_CERT_FILE": "/srv/tls/fullchain.pem", "TLS_KEY_FILE": "/srv/tls/privkey.pem"}
    nginx = services(env)["nginx"]
    assert nginx["environment"]["TLS_CERT"] == "/etc/nginx/tls/fullchain.pem"
    assert nginx["environment"]["TLS_KEY"] == "/etc/nginx/tls/privkey.pem"
    assert "/srv/tls/fullchain.pem:/etc/nginx/tls/fullchain.pem:ro" in nginx["volumes"]
    assert "/srv/tls/privkey.pem:/etc/nginx/tls/privkey.pem:ro" in nginx["volumes"]


def test_tls_with_lets_encrypt() -> None:
    env = {"ACME_DOMAIN": "trader.example.com", "ACME_EMAIL": "me@example.com"}
    all_services = services(env)
    nginx, certbot = all_services["nginx"], all_services["certbot"]
    live = "/etc/letsencrypt/live/trader.example.com"
    assert nginx["environment"]["TLS_CERT"] == f"{live}/fullchain.pem"
    assert nginx["environment"]["TLS_KEY"] == f"{live}/privkey.pem"
    assert nginx["environment"]["ACME_ROOT"] == "/var/www/acme"
    # nothing of the host is mounted where no file is named
    assert "/dev/null:/etc/nginx/tls/fullchain.pem:ro" in nginx["volumes"]
    assert {"acme-webroot:/var/www/acme:ro", "letsencrypt:/etc/letsencrypt:ro"} <= set(nginx["volumes"])
    assert {"acme-webroot:/var/www/acme", "letsencrypt:/etc/letsencrypt"} <= set(certbot["volumes"])
    assert certbot["profiles"] == ["letsencrypt"]
    assert certbot["environment"] == {"ACME_DOMAIN": "trader.example.com", "ACME_EMAIL": "me@example.com"}
    script = certbot["command"][0]
    assert "--webroot -w /var/www/acme" in script and '-d "$ACME_DOMAIN"' in script
    assert "sleep 43200" in script  # every 12 hours; --keep-until-expiring renews only when due
    assert "--keep-until-expiring" in script


def test_no_host_path_is_mounted_unless_env_names_it() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("/"):
                assert source in ("/dev/null", "/var/run/docker.sock"), f"{name}: {volume}"


def test_nginx_gets_the_container_contract() -> None:
    environment = services()["nginx"]["environment"]
    assert environment["HTTP_PORT"] == "8080" and environment["HTTPS_PORT"] == "8443"
    assert environment["RUN_DIR"] == "/tmp/nginx"
    assert environment["TV_CLIENT_CA"] == ""  # the entrypoint's default: the image's system bundle
    nginx = services({"TV_CLIENT_CA_FILE": "/etc/ssl/certs/ca-certificates.crt"})["nginx"]
    assert nginx["environment"]["TV_CLIENT_CA"] == "/etc/nginx/tls/tv-client-ca.pem"
    assert "/etc/ssl/certs/ca-certificates.crt:/etc/nginx/tls/tv-client-ca.pem:ro" in nginx["volumes"]
    assert environment["WEBHOOK_REQUIRE_TV_CERT"] == "false"
    assert (
        services({"WEBHOOK_REQUIRE_TV_CERT": "true", "WEBHOOK_ALLOWED_IPS": "52.89.214.238"})["nginx"][
            "environment"
        ].items()
        >= {"WEBHOOK_REQUIRE_TV_CERT": "true", "WEBHOOK_ALLOWED_IPS": "52.89.214.238"}.items()
    )


def test_the_schema_is_upgraded_once_before_any_service_starts() -> None:
    all_services = services()
    migrate = all_services["migrate"]
    assert migrate["command"] == ["bluefinai", "db", "upgrade"]
    assert migrate["healthcheck"] == {"disable": True} and "autoheal" not in migrate["labels"]
    for name in APPS:
        assert all_services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_dev_override_keeps_the_hardening_and_turns_the_helpers_off() -> None:
    dev = load_compose("docker-compose.dev.yml")["services"]
    for name in APPS:
        assert all(v.endswith(":ro") for v in dev[name]["volumes"]), name
        assert not {"read_only", "cap_drop", "user", "security_opt", "ports"} & set(dev[name]), name
    assert dev["autoheal"]["profiles"] == dev["watchtower"]["profiles"] == ["never"]


def test_secrets_folder_stays_out_of_git_and_images() -> None:
    assert ".deploy" in (ROOT / ".dockerignore").read_text().split()
    assert any(
        line.strip().rstrip("/") == ".deploy" for line in (ROOT / ".gitignore").read_text().splitlines()
    )


def test_every_dev_mount_exists() -> None:
    dev = load_compose("docker-compose.dev.yml")["services"]
    for service in dev.values():
        for volume in service.get("volumes", []):
            assert (ROOT / Path(volume.split(":")[0])).exists(), volume
