"""The agent's trading metrics at /metrics equal what the journal holds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from agent.analysis.rules import RulesAnalyst
from agent.api.metrics import agent_collectors, quantile
from agent.engine import control
from agent.engine.engine import Engine
from agent.journal.events import Journal
from agent.risk.presets import PRESETS
from shared.db import AiCallRow, Database, OrderRow, SignalRow
from shared.exchange.paper import PaperConfig, PaperExchange
from shared.marketdata.feeds import ReplayFeed
from shared.metrics import install_metrics, scrape_samples
from tests.conftest import REAL_CANDLES

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


class Publisher:
    def publish(self, name: str, data: dict[str, Any]) -> None:
        pass


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/x.db")
    database.migrate()
    return database


@pytest.fixture
def engine(db: Database) -> Engine:
    engine = Engine(
        db=db, exchange=PaperExchange(db, PaperConfig(slippage_bps=0.0)), analyst=RulesAnalyst(),
        feeds=[ReplayFeed(REAL_CANDLES, "BTC-PERP", start_index=300)], journal=Journal(Publisher()),  # type: ignore[arg-type]
        policy=PRESETS["moderate"], candle_interval_s=0.0,
    )  # fmt: skip
    engine.prepare()
    return engine


def scrape(engine: Engine, db: Database) -> dict[str, list[tuple[dict[str, str], float]]]:
    app = Flask("agent-metrics")
    install_metrics(app, "agent", agent_collectors(engine, db))
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    return scrape_samples(response.get_data(as_text=True))


def one(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    (found,) = [v for got, v in samples[name] if all(got.get(k) == x for k, x in labels.items())]
    return found


def add_signal(db: Database, key: str, received: datetime, order_after_s: list[float]) -> int:
    with db.session() as session:
        signal = SignalRow(idempotency_key=key, source="tradingview", symbol="BTC-PERP", action="buy", raw={},
                           received_at=received)  # fmt: skip
        session.add(signal)
        session.flush()
        for n, seconds in enumerate(order_after_s):
            session.add(OrderRow(
                client_id=f"{key}-{n}", signal_id=signal.id, symbol="BTC-PERP", side="BUY", order_type="MARKET",
                quantity=0.01, status="FILLED" if n == 0 else "OPEN",
                created_at=received + timedelta(seconds=seconds),
            ))  # fmt: skip
        return signal.id


def test_orders_by_status_and_signal_to_order_latency_equal_the_journal(engine: Engine, db: Database) -> None:
    add_signal(db, "a", T0, [1.0, 30.0])  # the first order counts, not the stop placed later
    add_signal(db, "b", T0 + timedelta(minutes=1), [2.0])
    add_signal(db, "c", T0 + timedelta(minutes=2), [4.0])
    add_signal(db, "d", T0 + timedelta(minutes=3), [])  # no order: no latency
    with db.session() as session:
        session.add(OrderRow(client_id="lost-1", symbol="BTC-PERP", side="SELL", order_type="LIMIT",
                             quantity=0.01, status="LOST"))  # fmt: skip
        by_status = dict(
            session.execute(select(OrderRow.status, func.count()).group_by(OrderRow.status)).all()
        )
    samples = scrape(engine, db)
    assert by_status == {"FILLED": 3, "OPEN": 1, "LOST": 1}
    for status in ("FILLED", "OPEN", "LOST", "CANCELED", "REJECTED", "PENDING_SUBMIT"):
        assert one(samples, "bluefinai_orders", status=status) == by_status.get(status, 0)
    assert one(samples, "bluefinai_signal_to_order_signals") == 3
    assert one(samples, "bluefinai_signal_to_order_seconds", quantile="0.5") == pytest.approx(2.0)
    assert one(samples, "bluefinai_signal_to_order_seconds", quantile="1.0") == pytest.approx(4.0)
    assert one(samples, "bluefinai_signal_to_order_seconds", quantile="0.9") == pytest.approx(3.6)
    assert one(samples, "bluefinai_orders", status="FILLED", service="agent") == 3


def test_a_real_signal_through_the_engine_is_seen(engine: Engine, db: Database) -> None:
    assert one(scrape(engine, db), "bluefinai_signal_to_order_signals") == 0
    with db.session() as session:
        session.add(
            SignalRow(idempotency_key="k", source="tradingview", symbol="BTC-PERP", action="buy", raw={})
        )
    assert engine.process_pending_signals() == 1
    samples = scrape(engine, db)
    with db.session() as session:
        rows = session.scalars(select(OrderRow)).all()
        signal = session.scalars(select(SignalRow)).one()
    assert sum(one(samples, "bluefinai_orders", status=s) for s in {r.status for r in rows}) == len(rows)
    assert one(samples, "bluefinai_orders", status="FILLED") == sum(r.status == "FILLED" for r in rows) >= 1
    assert one(samples, "bluefinai_signal_to_order_signals") == 1
    first = min(r.created_at for r in rows)
    assert one(samples, "bluefinai_signal_to_order_seconds", quantile="0.5") == pytest.approx(
        (first - signal.received_at).total_seconds(), abs=1e-3
    )
    assert one(samples, "bluefinai_equity_usd") == pytest.approx(engine.last_equity)


def test_ai_calls_tokens_and_cost_by_provider_and_outcome(engine: Engine, db: Database) -> None:
    calls = [
        ("claude", "", "[]", 100, 20, 0.01),
        ("claude", "", "[]", 150, 30, 0.02),
        ("claude", "timeout", "[]", 0, 0, 0.0),
        ("claude", "", '[{"field": "action"}]', 120, 25, 0.015),
        ("perplexity", "", "[]", 300, 50, 0.005),
    ]
    with db.session() as session:
        for n, (provider, error, validation, tokens_in, tokens_out, cost) in enumerate(calls):
            session.add(AiCallRow(
                provider=provider, model="m", prompt_version="v1", prompt_hash=f"h{n}", signal_key=f"s{n}",
                prompt="p", error=error, validation_errors=validation, input_tokens=tokens_in,
                output_tokens=tokens_out, cost_usd=cost,
            ))  # fmt: skip
    samples = scrape(engine, db)
    assert one(samples, "bluefinai_ai_calls_total", provider="claude", outcome="ok") == 2
    assert one(samples, "bluefinai_ai_calls_total", provider="claude", outcome="error") == 1
    assert one(samples, "bluefinai_ai_calls_total", provider="claude", outcome="invalid") == 1
    assert one(samples, "bluefinai_ai_calls_total", provider="perplexity", outcome="ok") == 1
    assert one(samples, "bluefinai_ai_tokens_total", provider="claude", direction="input") == 370
    assert one(samples, "bluefinai_ai_tokens_total", provider="claude", direction="output") == 75
    assert one(samples, "bluefinai_ai_tokens_total", provider="perplexity", direction="input") == 300
    assert one(samples, "bluefinai_ai_cost_usd_total", provider="claude") == pytest.approx(0.045)
    assert one(samples, "bluefinai_ai_cost_usd_total", provider="perplexity") == pytest.approx(0.005)


def test_engine_lag_running_and_trading_state(engine: Engine, db: Database) -> None:
    engine.last_pass_at = time.monotonic() - 42.0
    samples = scrape(engine, db)
    assert 42.0 <= one(samples, "bluefinai_engine_loop_lag_seconds") < 45.0
    assert one(samples, "bluefinai_engine_running") == 1
    assert one(samples, "bluefinai_trading_state", state="ACTIVE") == 1
    assert one(samples, "bluefinai_trading_state", state="HALTED") == 0
    control.kill(engine, "test", close_positions=False)
    samples = scrape(engine, db)
    assert one(samples, "bluefinai_trading_state", state="HALTED") == 1
    assert one(samples, "bluefinai_trading_state", state="ACTIVE") == 0
    engine.last_pass_at = time.monotonic()
    assert one(scrape(engine, db), "bluefinai_engine_loop_lag_seconds") < 2.0


def test_quantile_interpolates_like_numpy() -> None:
    import numpy as np

    values = sorted([0.5, 3.0, 1.25, 9.0, 2.0, 7.5])
    for q in (0.0, 0.5, 0.9, 0.99, 1.0):
        assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))
    assert quantile([3.0], 0.9) == 3.0
