"""kill -9 of the agent while Bluefin holds the answer to an order: after a restart there is exactly one
order on the (fake) exchange and the database agrees."""

from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bluefinai.processes import stop_process
from bluefinai.services import service_specs, start_service, wait_healthy
from shared.db import Database, OrderRow, SignalRow
from tests.conftest import PASSPHRASE, TOKEN, free_port, wait_for
from tests.fakes.bluefin_gateway import FakeBluefinGateway

pytestmark = pytest.mark.integration


def test_kill_9_between_commit_and_answer_leaves_exactly_one_order(tmp_path: Path) -> None:
    gateway = FakeBluefinGateway(cursor=301)
    gateway.start()
    db_url = f"sqlite:///{tmp_path / 'agent.db'}"
    port = free_port()
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "BLUEFINAI_ENV_FILE": "",
        "API_TOKEN": TOKEN, "WEBHOOK_PASSPHRASE": PASSPHRASE, "DATA_DIR": str(tmp_path), "DATABASE_URL": db_url,
        "AGENT_PORT": str(port), "SOCKET_PORT": str(free_port()), "WEBHOOK_PORT": str(free_port()),
        "NGINX_PORT": str(free_port()), "TRADING_MODE": "real", "BLUEFIN_API": "v2", "BLUEFIN_NETWORK": gateway.url,
        "BLUEFIN_PRIVATE_KEY": "0x" + secrets.token_hex(32), "MARKET_DATA_SOURCE": "bluefin",
    }  # fmt: skip
    spec = next(s for s in service_specs(port, free_port(), free_port()) if s.name == "agent")
    db = Database(db_url)
    db.migrate()
    agent = start_service(spec, env, tmp_path / "agent.log")
    try:
        assert wait_healthy(spec.health_url, 60, agent), (tmp_path / "agent.log").read_text()[-3000:]
        gateway.hang_after_accept_s = 60.0  # Bluefin takes the order and the answer never comes back
        with db.session() as session:
            session.add(
                SignalRow(
                    idempotency_key="crash-1", source="tradingview", symbol="BTC-PERP", action="buy", raw={}
                )
            )
        requests.post(
            f"http://127.0.0.1:{port}/internal/nudge", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        wait_for(lambda: len(gateway.orders) == 1, timeout_s=20)

        def pending() -> list[str]:
            with db.session() as session:
                return list(session.scalars(select(OrderRow.status).where(OrderRow.role == "entry")))

        def entries_sent() -> list[dict[str, str]]:
            return [o for o in gateway.orders.values() if o["orderType"] == "MARKET"]

        assert pending() == ["PENDING_SUBMIT"]
        os.killpg(agent.pid, signal.SIGKILL)  # kill -9, master and worker
        agent.wait(10)
        gateway.hang_after_accept_s = 0.0

        agent = start_service(spec, env, tmp_path / "agent.log")
        assert wait_healthy(spec.health_url, 60, agent)
        wait_for(lambda: pending() == ["FILLED"], timeout_s=20)
        (placed,) = entries_sent()

        def protected() -> list[str]:
            with db.session() as session:
                return list(session.scalars(select(OrderRow.status).where(OrderRow.role == "stop_loss")))

        wait_for(
            lambda: protected() == ["OPEN"], timeout_s=10
        )  # the fill found at start-up: protected at once
        with db.session() as session:
            (order,) = session.scalars(select(OrderRow).where(OrderRow.role == "entry")).all()
        assert placed["clientId"] == f"bluefin-v2-client-python: {order.client_id}"
        assert order.filled_quantity == pytest.approx(int(placed["quantity"]) / 10**18)
        held, _ = gateway.position["BTC-PERP"]
        positions = requests.get(
            f"http://127.0.0.1:{port}/api/positions", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        ).json()["positions"]
        assert [p["quantity"] for p in positions] == pytest.approx([held])
        time.sleep(1.0)
        assert len(entries_sent()) == 1  # never resent
    finally:
        stop_process(agent)
        gateway.stop()
