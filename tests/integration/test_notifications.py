"""A real agent (gunicorn) with NOTIFY_URLS pointing at a local JSON webhook: a fill and the kill switch
arrive there; /metrics of the real agent equals its journal; the webhook's two workers each keep their own
series."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from starlette.applications import Starlette

from bluefinai.processes import stop_process
from bluefinai.services import ServiceSpec, service_specs, start_service, wait_healthy
from shared.db import Database, OrderRow, SignalRow
from shared.metrics import scrape_samples
from tests.conftest import PASSPHRASE, TOKEN, free_port, wait_for
from tests.unit.shared.test_notify import HOOK_TOKEN, Receiver

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# gunicorn app factories: each service exactly as create_app builds it (notifications and metrics included)
def notifying_agent() -> Flask:
    from agent.api.app import create_app

    return create_app()


def metered_webhook() -> Starlette:
    from webhook.app import create_app

    return create_app()


@dataclass
class Service:
    url: str
    log: Path
    process: Popen[bytes]
    db: Database


def environment(tmp_path: Path, receiver: Receiver, ports: dict[str, int]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "BLUEFINAI_ENV_FILE": "",
        "API_TOKEN": TOKEN,
        "WEBHOOK_PASSPHRASE": PASSPHRASE,
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'notify.db'}",
        "AGENT_PORT": str(ports["agent"]),
        "WEBHOOK_PORT": str(ports["webhook"]),
        "SOCKET_PORT": str(free_port()),  # no dashboard: the agent's events are dropped
        "MARKET_DATA_SOURCE": "replay",
        "REPLAY_SPEED": "1",
        "LOG_LEVEL": "INFO",
        "NOTIFY_URLS": receiver.url(),
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def launch(name: str, app: str, workers: tuple[str, ...], env: dict[str, str], tmp_path: Path) -> Service:
    port = int(env[f"{name.upper()}_PORT"])
    spec = ServiceSpec(name, app, port, workers)
    log = tmp_path / f"{name}.log"
    process = start_service(spec, env, log)
    if not wait_healthy(spec.health_url, 60, process):
        stop_process(process)
        raise AssertionError(f"{name} did not become healthy:\n{log.read_text()[-3000:]}")
    return Service(f"http://127.0.0.1:{port}", log, process, Database(env["DATABASE_URL"]))


@pytest.fixture
def agent(tmp_path: Path, receiver: Receiver) -> Iterator[Service]:
    env = environment(tmp_path, receiver, {"agent": free_port(), "webhook": free_port()})
    Database(env["DATABASE_URL"]).migrate()
    service = launch(
        "agent", "tests.integration.test_notifications:notifying_agent()",
        ("-k", "gthread", "-w", "1", "--threads", "8"), env, tmp_path,
    )  # fmt: skip
    yield service
    stop_process(service.process)


def test_a_real_agent_notifies_a_fill_and_the_kill_switch(agent: Service, receiver: Receiver) -> None:
    with agent.db.session() as session:
        session.add(
            SignalRow(idempotency_key="n-1", source="tradingview", symbol="BTC-PERP", action="buy", raw={})
        )
    assert requests.post(f"{agent.url}/internal/nudge", headers=AUTH, timeout=5).status_code == 202
    wait_for(lambda: any("Fill" in t for t in receiver.texts()), 20)
    (fill,) = [t for t in receiver.texts() if ": Fill |" in t]
    assert fill.startswith("[simulation] BTC-PERP: Fill | BUY ") and fill.endswith("(entry)")

    answer = requests.post(
        f"{agent.url}/api/control/kill", json={"reason": "integration test", "close_positions": True},
        headers=AUTH, timeout=10,
    )  # fmt: skip
    assert answer.status_code == 200
    texts = wait_for(lambda: [t for t in receiver.texts() if "Kill switch" in t], 10)
    assert texts[0].startswith("[simulation] agent: Kill switch | KILL SWITCH: integration test;")
    assert "1 positions closed" in texts[0]
    closing = wait_for(lambda: [t for t in receiver.texts() if "(kill switch)" in t], 10)
    assert closing[0].startswith("[simulation] BTC-PERP: Fill | SELL ")
    raw = b"".join(receiver.bodies).decode()
    assert TOKEN not in raw and PASSPHRASE not in raw and HOOK_TOKEN not in raw
    log = agent.log.read_text()
    assert '"event": "notifications_on"' in log and HOOK_TOKEN not in log


def test_the_real_agents_metrics_equal_its_journal(agent: Service) -> None:
    with agent.db.session() as session:
        session.add(
            SignalRow(idempotency_key="m-1", source="tradingview", symbol="BTC-PERP", action="buy", raw={})
        )
    requests.post(f"{agent.url}/internal/nudge", headers=AUTH, timeout=5)

    def filled() -> int:
        with agent.db.session() as session:
            return int(session.scalar(select(func.count()).where(OrderRow.status == "FILLED")) or 0)

    wait_for(filled, 20)
    for _ in range(3):
        requests.get(f"{agent.url}/health", timeout=5)

    def by_status() -> dict[str, int]:
        with agent.db.session() as session:
            return dict(
                session.execute(select(OrderRow.status, func.count()).group_by(OrderRow.status)).all()
            )

    for _ in range(50):  # the stop and the target are placed just after the fill: a scrape between two reads
        journal = by_status()
        first = scrape_samples(requests.get(f"{agent.url}/metrics", timeout=5).text)
        if by_status() == journal:
            break
    orders = {labels["status"]: v for labels, v in first["bluefinai_orders"] if v}
    assert orders == journal and journal["FILLED"] == 1
    assert {labels["service"] for labels, _ in first["bluefinai_orders"]} == {"agent"}
    health = [v for labels, v in first["bluefinai_http_requests_total"] if labels["route"] == "/health"]
    assert sum(health) >= 4  # the start-up probe and these three
    requests.get(f"{agent.url}/health", timeout=5)
    second = scrape_samples(requests.get(f"{agent.url}/metrics", timeout=5).text)
    assert sum(
        v for labels, v in second["bluefinai_http_requests_total"] if labels["route"] == "/health"
    ) == (sum(health) + 1)
    (lag,) = [v for _, v in second["bluefinai_engine_loop_lag_seconds"]]
    assert 0 <= lag < 90  # the replay loop passes at least once a minute
    assert [v for _, v in second["bluefinai_signal_to_order_signals"]] == [1.0]
    (rss,) = [v for _, v in second["process_resident_memory_bytes"]]
    assert rss > 30e6
    assert (
        requests.get(f"{agent.url}/api/orders", timeout=5).status_code == 401
    )  # /metrics opened nothing else


def test_the_webhooks_two_workers_each_keep_their_series(tmp_path: Path, receiver: Receiver) -> None:
    env = environment(tmp_path, receiver, {"agent": free_port(), "webhook": free_port()})
    Database(env["DATABASE_URL"]).migrate()
    (spec,) = [s for s in service_specs(free_port(), free_port(), free_port()) if s.name == "webhook"]
    assert "-w" in spec.worker_args and spec.worker_args[spec.worker_args.index("-w") + 1] == "2"
    webhook = launch(
        "webhook", "tests.integration.test_notifications:metered_webhook()", spec.worker_args, env, tmp_path
    )  # the service's own worker class and count
    try:
        bad = requests.post(f"{webhook.url}/webhook", data=json.dumps({"passphrase": "wrong-passphrase-0000"}),
                            headers={"Content-Type": "text/plain"}, timeout=5)  # fmt: skip
        assert 400 <= bad.status_code < 500
        seen: dict[str, list[float]] = {}
        for _ in range(30):
            samples = scrape_samples(requests.get(f"{webhook.url}/metrics", timeout=5).text)
            (worker,) = {labels["worker"] for labels, _ in samples["process_cpu_seconds_total"]}
            # a scrape counts the scrapes its worker answered before it (none yet: no series at all)
            served = sum(
                v
                for labels, v in samples.get("bluefinai_http_requests_total", [])
                if labels["route"] == "/metrics"
            )
            seen.setdefault(worker, []).append(served)
        assert 1 <= len(seen) <= 2
        for counts in seen.values():
            assert counts == sorted(counts)  # a worker's own counter never goes back
        # every scrape was counted by its worker: 30 in all, less each worker's last one, not yet in its count
        assert sum(counts[-1] for counts in seen.values()) == 30 - len(seen)
    finally:
        stop_process(webhook.process)
