"""SIGNAL_MAX_AGE_S at decision time: an older signal is recorded as expired (from its alert's time, else
from its arrival), never traded; the market clock is "now" on replayed data, the wall clock on live data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from agent.engine.engine import Engine
from shared.config import load_settings
from shared.db import Database, DecisionRow, OrderRow, SignalRow
from shared.errors import ConfigError
from tests.unit.agent.engine.test_engine import RecordingPublisher, count, make_engine


@pytest.fixture
def engine(database: Database) -> Engine:
    engine = make_engine(database, RecordingPublisher())
    engine.prepare()
    engine.signal_max_age_s = 120.0
    return engine


def add(db: Database, key: str, alert_time: datetime | None, received_at: datetime | None = None) -> int:
    with db.session() as session:
        row = SignalRow(
            idempotency_key=key, source="tradingview", symbol="BTC-PERP", action="buy", raw={},
            alert_time=alert_time, **({"received_at": received_at} if received_at else {}),
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def decision(db: Database, signal_id: int) -> DecisionRow:
    with db.session() as session:
        row = session.scalars(select(DecisionRow).where(DecisionRow.signal_id == signal_id)).one()
        session.expunge(row)
        return row


def test_a_signal_older_than_the_limit_on_the_market_clock_is_expired_not_traded(
    engine: Engine, database: Database
) -> None:
    now = engine.market_now()
    assert now.year == 2022  # replayed candles: the market clock, not the wall clock
    old = add(database, "old", now - timedelta(seconds=121))
    assert engine.process_pending_signals() == 1
    row = decision(database, old)
    assert row.action == "expired" and not row.risk_approved and row.quantity == 0
    assert row.risk == {"rule": "expired", "stop": None}
    assert "121 s old" in row.risk_reason and "from its alert's time" in row.risk_reason
    assert "SIGNAL_MAX_AGE_S is 120" in row.rationale
    assert count(database, OrderRow) == 0
    fresh = add(database, "fresh", now - timedelta(seconds=119))
    engine.process_pending_signals()
    assert decision(database, fresh).action == "open_long" and count(database, OrderRow) >= 1


def test_without_an_alert_time_the_age_counts_from_arrival(engine: Engine, database: Database) -> None:
    now = engine.market_now()
    stale = add(database, "stale", None, received_at=now - timedelta(hours=3))
    engine.process_pending_signals()
    row = decision(database, stale)
    assert row.action == "expired" and "10,800 s old" in row.risk_reason and "its arrival" in row.risk_reason
    assert count(database, OrderRow) == 0


def test_on_live_data_the_wall_clock_is_now(engine: Engine, database: Database) -> None:
    # a signal left pending through an outage: the market clock may stand still, the wall clock does not
    engine.feeds["BTC-PERP"].source = "bluefin"
    pending = add(database, "outage", datetime.now(UTC) - timedelta(minutes=30))
    engine.process_pending_signals()
    assert decision(database, pending).action == "expired"
    assert count(database, OrderRow) == 0


def test_the_setting_has_its_default_and_bounds() -> None:
    assert load_settings().signal_max_age_s == 120.0
    with pytest.raises(ConfigError, match="SIGNAL_MAX_AGE_S"):
        load_settings(signal_max_age_s=0)
    with pytest.raises(ConfigError, match="SIGNAL_MAX_AGE_S"):
        load_settings(signal_max_age_s=86_401)
