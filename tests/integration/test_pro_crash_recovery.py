"""The agent as a real process (gunicorn) trading for real on the fake Bluefin Pro:
- kill -9 while Bluefin holds the answer to an entry: after a restart there is exactly one order on the
  exchange, our books agree with it, and the fill is protected by a stop;
- TRADING_MODE=real with Bluefin unreachable refuses to start, in one line, instead of trading on the
  replayed month."""

from __future__ import annotations

import json
import os
import secrets
import signal
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bluefinai.processes import stop_process
from bluefinai.services import service_specs, start_service, wait_healthy
from shared.db import Database, OrderRow, SignalRow
from tests.conftest import PASSPHRASE, TOKEN, free_port, wait_for
from tests.fakes.bluefin_pro import FakeBluefinPro

pytestmark = pytest.mark.integration


def agent_env(tmp_path: Path, port: int, network: str, key: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "BLUEFINAI_ENV_FILE": "",
        "API_TOKEN": TOKEN, "WEBHOOK_PASSPHRASE": PASSPHRASE, "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'agent.db'}", "AGENT_PORT": str(port),
        "SOCKET_PORT": str(free_port()), "WEBHOOK_PORT": str(free_port()), "NGINX_PORT": str(free_port()),
        "TRADING_MODE": "real", "BLUEFIN_API": "pro", "BLUEFIN_NETWORK": network, "BLUEFIN_PRIVATE_KEY": key,
        "MARKET_DATA_SOURCE": "bluefin", "AI_MODEL_PROVIDER": "follow", "BLUEFIN_TIMEOUT_S": "2",
    }  # fmt: skip


def api(port: int, path: str) -> Any:
    return requests.get(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    ).json()


def test_kill_9_between_commit_and_answer_leaves_exactly_one_order_and_books_that_agree(
    tmp_path: Path,
) -> None:
    fake = FakeBluefinPro(symbols=("BTC-PERP",))
    fake.start()
    port = free_port()
    env = agent_env(tmp_path, port, fake.url, "0x" + secrets.token_hex(32))
    spec = next(s for s in service_specs(port, free_port(), free_port()) if s.name == "agent")
    db = Database(env["DATABASE_URL"])
    db.migrate()
    agent = start_service(spec, env, tmp_path / "agent.log")
    try:
        assert wait_healthy(spec.health_url, 60, agent), (tmp_path / "agent.log").read_text()[-3000:]
        fake.hold_answer_s = 60.0  # Bluefin takes (and fills) the order; the answer never comes back
        price = fake.price("BTC-PERP")
        with db.session() as session:
            session.add(SignalRow(idempotency_key="crash-1", source="tradingview", symbol="BTC-PERP", action="buy",
                                  stop_loss=round(price - 500, 1), raw={}))  # fmt: skip
        requests.post(f"http://127.0.0.1:{port}/internal/nudge", headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=5)  # fmt: skip
        wait_for(lambda: len(fake.order_requests) == 1, timeout_s=20)

        def rows() -> list[OrderRow]:
            with db.session() as session:
                return list(session.scalars(select(OrderRow).order_by(OrderRow.id)))

        (pending,) = rows()
        assert pending.status == "PENDING_SUBMIT" and pending.exchange_id and pending.expires_at is not None
        os.killpg(agent.pid, signal.SIGKILL)  # kill -9, master and worker
        agent.wait(10)
        fake.hold_answer_s = 0.0

        agent = start_service(spec, env, tmp_path / "agent.log")
        assert wait_healthy(spec.health_url, 60, agent), (tmp_path / "agent.log").read_text()[-3000:]
        wait_for(lambda: rows()[0].status == "FILLED", timeout_s=20)
        stop = wait_for(
            lambda: [o for o in rows() if o.role == "stop_loss" and o.status == "OPEN"], timeout_s=20
        )
        (entry_request,) = [r for r in fake.order_requests if r["type"] == "MARKET"]
        entry = rows()[0]
        assert entry_request["clientOrderId"] == entry.client_id
        assert entry.exchange_id in fake.orders  # the hash we recorded before sending is Bluefin's
        held = fake.account(json.loads(json.dumps(entry_request))["signedFields"]["accountAddress"])
        assert held["positions"]["BTC-PERP"]["size"] == pytest.approx(entry.filled_quantity)
        positions = api(port, "/api/positions")["positions"]
        assert [p["quantity"] for p in positions] == pytest.approx([entry.filled_quantity])
        standby = [o for o in fake.orders.values() if o["status"] == "STANDBY"]
        assert [o["clientOrderId"] for o in standby] == [stop[0].client_id]
        assert not [o for o in rows() if o.status == "LOST"]
        assert len([r for r in fake.order_requests if r["type"] == "MARKET"]) == 1  # never resent
    finally:
        stop_process(agent)
        fake.stop()


def test_real_mode_with_bluefin_unreachable_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    env = agent_env(tmp_path, port, f"http://127.0.0.1:{free_port()}", "0x" + secrets.token_hex(32))
    env["MARKET_DATA_SOURCE"] = "auto"  # would fall back to the replayed month in simulation
    spec = next(s for s in service_specs(port, free_port(), free_port()) if s.name == "agent")
    Database(env["DATABASE_URL"]).migrate()
    agent = start_service(spec, env, tmp_path / "agent.log")
    try:
        assert agent.wait(60) != 0
        log = (tmp_path / "agent.log").read_text()
        refusals = [json.loads(line) for line in log.splitlines() if '"refusing_to_start"' in line]
        assert len(refusals) == 1
        assert "Bluefin's live prices are not available" in refusals[0]["problem"]
        assert '"feed_selected"' not in log and "replay" not in refusals[0]["problem"].split(";")[0]
    finally:
        stop_process(agent)
