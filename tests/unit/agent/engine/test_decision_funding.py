"""The engine hands the market's expected funding rate to the risk gate: a paper position's decision records
the funding it is expected to pay over FUNDING_HORIZON_HOURS at its size, and its volatility size counts
that funding in the loss at the stop."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.db import Database, DecisionRow
from shared.marketdata.funding import FundingRate
from tests.unit.agent.engine.test_engine import RecordingPublisher, add_signal, make_engine


def decide_a_buy(database: Database, rate: float | None) -> DecisionRow:
    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    if rate is not None:
        engine.market_driver.on_funding(FundingRate("BTC-PERP", rate, engine.market_now()))
    add_signal(database, f"k-{rate}", "buy")
    assert engine.process_pending_signals() == 1
    with database.session() as session:
        row = session.scalars(select(DecisionRow)).one()
        session.expunge(row)
    return row


def test_the_decision_records_the_expected_funding_at_its_size(database: Database) -> None:
    row = decide_a_buy(database, 0.0002)
    risk = row.risk
    price = risk["funding"]["per_unit_usd"] / (0.0002 * 8)  # per unit = rate x price x 8 h / 1 h
    assert risk["funding"]["rate"] == 0.0002 and risk["funding"]["horizon_hours"] == 8.0
    assert risk["funding"]["bps"] == pytest.approx(16.0)  # 0.02 % an hour for 8 hours
    assert risk["funding_cost_usd"] == pytest.approx(0.0002 * 8 * price * row.quantity, rel=1e-6)
    assert row.risk_approved and row.quantity > 0
    # RISK_PER_TRADE 1 % of 10,000 over the loss at the stop, funding included: below 100 / stop distance
    volatility, distance = risk["sizes"]["volatility"], risk["stop_distance"]
    assert volatility * (distance + risk["funding"]["per_unit_usd"]) <= 100.0 * (1 + 1e-6)
    assert volatility < 100.0 / distance


def test_without_a_known_rate_funding_is_nothing(database: Database) -> None:
    risk = decide_a_buy(database, None).risk
    assert risk["funding_cost_usd"] == 0.0 and risk["funding"]["per_unit_usd"] == 0.0
