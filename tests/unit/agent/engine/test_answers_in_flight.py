"""An AI's answer survives a crash between the answer and the order: the restarted engine reuses it (one
call, one order) while the signal is within SIGNAL_MAX_AGE_S, else records the signal as expired. Claude
is the real SDK against the fake Anthropic API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from agent.engine.answers import PREFIX, AnswersInFlight
from agent.engine.decisions import SignalDecisions
from agent.engine.engine import Engine
from shared.db import AiCacheRow, Database, DecisionRow, OrderRow, SignalRow
from shared.marketdata.feeds import load_candle_csv
from shared.models import Decision, DecisionAction
from tests.conftest import REAL_CANDLES
from tests.fakes.anthropic_api import GOOD, FakeAnthropic, tool
from tests.unit.agent.conftest import prepared_app


@pytest.fixture(scope="module")
def api() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    yield fake
    fake.stop()


def start(settings: Any) -> tuple[Engine, Database]:
    app = prepared_app(settings)
    return app.extensions["engine"], app.extensions["db"]


def add(db: Database, key: str, **values: Any) -> int:
    with db.session() as session:
        row = SignalRow(
            idempotency_key=key, source="tradingview", symbol="BTC-PERP", action="buy", raw={}, **values
        )
        session.add(row)
        session.flush()
        return row.id


def kept_rows(db: Database) -> list[str]:
    with db.session() as session:
        return [r.key for r in session.scalars(select(AiCacheRow)) if r.key.startswith(PREFIX)]


def test_a_crash_after_the_answer_reuses_it_after_the_restart(
    api: FakeAnthropic, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    price = float(load_candle_csv(REAL_CANDLES)["close"].iloc[299])
    api.queue.clear()
    api.queue.append(("json", 200, tool({**GOOD, "stop_loss": price * 0.98, "take_profits": [price * 1.05]})))
    settings = make_settings(
        socket_url="http://127.0.0.1:9", ai_model_provider="claude", anthropic_api_key="sk-ant-crash-000000",
        anthropic_base_url=api.url, market_data_source="replay",
    )  # fmt: skip
    engine, db = start(settings)
    add(db, "tv:crash")
    asked = len(api.requests)

    def crash(*_: Any, **__: Any) -> None:
        raise SystemExit("killed between the answer and the order")

    with monkeypatch.context() as patch:
        patch.setattr(SignalDecisions, "_commit_decision", crash)
        with pytest.raises(SystemExit):
            engine.process_pending_signals()
    assert len(api.requests) == asked + 1
    assert kept_rows(db) == [PREFIX + "tv:crash"]
    with db.session() as session:
        assert (
            session.scalars(select(DecisionRow)).all() == [] and session.scalars(select(OrderRow)).all() == []
        )

    restarted, db = start(settings)  # a new engine on the same database: nothing of the first in memory
    assert restarted.process_pending_signals() == 1
    assert len(api.requests) == asked + 1  # not asked (nor paid) again
    with db.session() as session:
        (decision,) = session.scalars(select(DecisionRow)).all()
        entries = [o for o in session.scalars(select(OrderRow)) if o.role == "entry"]
    assert decision.analyst == "claude" and decision.action == "open_long" and decision.risk_approved
    assert decision.stop_loss == pytest.approx(price * 0.98)  # Claude's own stop, from the kept answer
    assert len(entries) == 1  # one order
    assert kept_rows(db) == []  # dropped once committed


def test_a_kept_answer_of_a_signal_that_became_too_old_is_dropped_and_the_signal_expired(
    api: FakeAnthropic, make_settings: Any
) -> None:
    settings = make_settings(
        socket_url="http://127.0.0.1:9", ai_model_provider="claude", anthropic_api_key="sk-ant-crash-000000",
        anthropic_base_url=api.url, market_data_source="replay", signal_max_age_s=120,
    )  # fmt: skip
    engine, db = start(settings)
    add(db, "tv:stale", alert_time=engine.market_now() - timedelta(seconds=121))
    AnswersInFlight(db).keep("tv:stale", Decision(DecisionAction.OPEN_LONG, 0.8, "kept", "claude"))
    asked = len(api.requests)
    assert engine.process_pending_signals() == 1
    with db.session() as session:
        (decision,) = session.scalars(select(DecisionRow)).all()
        orders = session.scalars(select(OrderRow)).all()
    assert decision.action == "expired" and orders == []
    assert len(api.requests) == asked and kept_rows(db) == []


def test_the_kept_decision_round_trips_every_field(database: Database) -> None:
    answers = AnswersInFlight(database)
    decision = Decision(
        DecisionAction.OPEN_SHORT, 0.7, "why", "perplexity", stop_loss=101.5, take_profit=90.0,
        factors={"trend": -0.4}, entry_type="limit", entry_price=100.0, take_profits=(95.0, 90.0),
        leverage=3.0, time_horizon="swing",
    )  # fmt: skip
    answers.keep("k", decision)
    assert answers.kept("k") == decision
    answers.drop("k")
    assert answers.kept("k") is None
