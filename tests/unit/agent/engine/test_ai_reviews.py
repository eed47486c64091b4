"""AI position reviews end to end on an engine over the paper exchange (built, not started: the test steps the
candles), with the real anthropic SDK / the chat-completions client against the fake APIs on 127.0.0.1: the
timer fires a review, a tighter stop is moved on the exchange, a widening one is refused by the gate, a
malformed answer does nothing, a close closes; every review is in the ledger with its AI call; replay asks
nothing and does the same."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from agent.engine.engine import Engine
from shared.db import (
    AiCacheRow,
    AiCallRow,
    Database,
    OrderRow,
    PaperOrderRow,
    PositionReviewRow,
    PositionRow,
    SignalRow,
)  # fmt: skip
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES
from tests.fakes.anthropic_api import GOOD, FakeAnthropic, review_tool, tool
from tests.fakes.chat_api import FakeChat, completion
from tests.fakes.queued_http import QueuedJSONServer
from tests.unit.agent.conftest import prepared_app

AUTH = {"Authorization": "Bearer test-api-token-0123456789"}
PRICE = float(load_candle_csv(REAL_CANDLES)["close"].iloc[299])


Answer = Callable[[dict[str, Any]], dict[str, Any]]


def claude_settings(api: FakeAnthropic, **more: Any) -> dict[str, Any]:
    return {"ai_model_provider": "claude", "anthropic_api_key": "sk-ant-review-0000", "anthropic_base_url": api.url,
            **more}  # fmt: skip


def chat_settings(api: FakeChat, **more: Any) -> dict[str, Any]:
    return {"ai_model_provider": "perplexity", "perplexity_api_key": "pplx-review-0000",
            "perplexity_base_url": api.url, **more}  # fmt: skip


def chat_review(answer: dict[str, Any]) -> dict[str, Any]:
    return completion(json.dumps(answer))


def chat_decision(decision: dict[str, Any]) -> dict[str, Any]:
    return completion(json.dumps(decision))


def open_long(
    make_settings: Any, api: QueuedJSONServer, decision: Answer, **values: Any
) -> tuple[Any, Engine]:
    """An engine whose analyst opened a long at the 300th real minute (stop 2 % below, target 5 % above)."""
    settings = make_settings(
        socket_url="http://127.0.0.1:9", market_data_source="replay", **{"ai_review_minutes": 1, **values}
    )
    app = prepared_app(settings)
    engine: Engine = app.extensions["engine"]
    api.queue.clear()
    api.queue.append(
        ("json", 200, decision({**GOOD, "stop_loss": PRICE * 0.98, "take_profits": [PRICE * 1.05]}))
    )
    engine.step_market()
    with engine.db.session() as session:
        session.add(SignalRow(idempotency_key="tv:review", source="tradingview", symbol="BTC-PERP", action="buy",
                              raw={}))  # fmt: skip
    engine.process_pending_signals()
    assert held(engine) > 0
    return app, engine


def held(engine: Engine) -> float:
    with engine.db.session() as session:
        row = session.get(PositionRow, "BTC-PERP")
        return row.quantity if row is not None else 0.0


def working_stops(engine: Engine) -> list[float]:
    with engine.db.session() as session:
        query = select(OrderRow).where(
            OrderRow.role == "stop_loss", OrderRow.status.in_(("OPEN", "PENDING_SUBMIT"))
        )
        return sorted(o.trigger_price or 0.0 for o in session.scalars(query))


def exchange_stops(engine: Engine) -> list[float]:
    """The stops working on the paper exchange itself (its own books, not ours)."""
    with engine.db.session() as session:
        query = select(PaperOrderRow).where(
            PaperOrderRow.status == "OPEN", PaperOrderRow.order_type == "STOP_MARKET"
        )
        return sorted(o.trigger_price or 0.0 for o in session.scalars(query))


def reviews(db: Database) -> list[PositionReviewRow]:
    with db.session() as session:
        return list(session.scalars(select(PositionReviewRow).order_by(PositionReviewRow.id)))


def review_once(engine: Engine, api: QueuedJSONServer, answer: dict[str, Any]) -> PositionReviewRow:
    """One candle: the 1-minute timer fires, the fake answers ``answer``; the review's row."""
    before = len(reviews(engine.db))
    api.queue.append(("json", 200, answer))
    engine.step_market()
    rows = reviews(engine.db)
    assert len(rows) == before + 1
    return rows[-1]


def stop_now(engine: Engine) -> float:
    plan = engine.manager.plan("BTC-PERP")
    assert plan is not None and plan.stop_price is not None
    return plan.stop_price


@pytest.mark.parametrize("provider", ["claude", "perplexity"])
def test_reviews_move_a_tighter_stop_refuse_a_wider_one_ignore_a_bad_answer_and_close(
    provider: str, claude_api: FakeAnthropic, chat_api: FakeChat, make_settings: Any
) -> None:
    if provider == "claude":
        api: QueuedJSONServer = claude_api
        app, engine = open_long(make_settings, api, tool, **claude_settings(claude_api))
        answer: Answer = review_tool
    else:
        api = chat_api
        app, engine = open_long(make_settings, api, chat_decision, **chat_settings(chat_api))
        answer = chat_review
    db, client = engine.db, app.test_client()
    stop = stop_now(engine)
    assert working_stops(engine) == [pytest.approx(stop)]

    tighter = round(stop + 100, 1)
    row = review_once(engine, api, answer({"action": "move_stop", "new_stop": tighter, "reason": "lock in"}))
    assert (
        api.requests[-1]["body"]["messages"][0]["content"].count("trend and momentum agree") == 1
    )  # rationale
    assert (row.action, row.outcome, row.triggers) == ("move_stop", "done", ["timer"])
    assert stop_now(engine) == pytest.approx(tighter)
    assert working_stops(engine) == [pytest.approx(tighter)] == exchange_stops(engine)

    wider = round(tighter - 300, 1)
    row = review_once(engine, api, answer({"action": "move_stop", "new_stop": wider, "reason": "more room"}))
    assert (row.outcome, row.rule) == ("refused", "stop_widening") and "widens the risk" in row.detail
    assert working_stops(engine) == [pytest.approx(tighter)] == exchange_stops(engine)  # nothing changed

    quantity = held(engine)
    row = review_once(engine, api, answer({"action": "reduce", "reason": "half off"}))  # no fraction
    assert row.outcome == "invalid" and row.action == "" and "fraction" in row.detail
    assert held(engine) == quantity and working_stops(engine) == [pytest.approx(tighter)]

    row = review_once(engine, api, answer({"action": "close", "reason": "momentum is gone"}))
    assert (row.action, row.outcome) == ("close", "done") and row.client_id
    assert held(engine) == 0.0
    with db.session() as session:
        close = session.scalars(select(OrderRow).where(OrderRow.client_id == row.client_id)).one()
        calls = {c.id: c for c in session.scalars(select(AiCallRow))}
    assert close.exit_kind == "ai_review" and close.reduce_only
    for review in reviews(db):  # each review linked to its audited, costed call
        call = calls[review.ai_call_id or -1]
        assert call.provider == provider and call.signal_key.startswith("review:BTC-PERP:")
        assert call.cost_usd == pytest.approx(review.cost_usd) and call.cost_usd > 0
    invalid = next(r for r in reviews(db) if r.outcome == "invalid")
    assert json.loads(calls[invalid.ai_call_id or -1].validation_errors)

    body = client.get("/api/reviews", headers=AUTH).get_json()["reviews"]
    assert [r["outcome"] for r in body] == ["done", "invalid", "refused", "done"]
    assert body[2]["rule"] == "stop_widening" and body[0]["ai_call"]["provider"] == provider
    decision_id = reviews(db)[0].decision_id
    story = client.get(f"/api/decisions/{decision_id}", headers=AUTH).get_json()
    assert len(story["reviews"]) == 4
    asked = len(api.requests)
    engine.step_market()  # flat: no position, no review
    assert len(api.requests) == asked and len(reviews(db)) == 4


def test_replay_makes_no_call_and_does_the_same(
    claude_api: FakeAnthropic, make_settings: Any, tmp_path: Any
) -> None:
    _, recorder = open_long(make_settings, claude_api, tool, **claude_settings(claude_api, ai_cache="record"))
    tighter = round(stop_now(recorder) + 100, 1)
    recorded = review_once(recorder, claude_api, review_tool({"action": "move_stop", "new_stop": tighter,
                                                              "reason": "lock in"}))  # fmt: skip
    with recorder.db.session() as session:
        answers = [(r.key, r.answer) for r in session.scalars(select(AiCacheRow))]
    replay_url = f"sqlite:///{tmp_path / 'replay.db'}"
    replay_db = Database(replay_url)
    replay_db.migrate()
    with replay_db.session() as session:
        session.add_all(AiCacheRow(key=k, answer=a) for k, a in answers)
    asked = len(claude_api.requests)
    settings = claude_settings(claude_api, ai_cache="replay", database_url=replay_url)
    claude_api.queue.clear()
    settings_obj = make_settings(
        socket_url="http://127.0.0.1:9", market_data_source="replay", ai_review_minutes=1, **settings
    )
    engine: Engine = prepared_app(settings_obj).extensions["engine"]
    engine.step_market()
    with engine.db.session() as session:
        session.add(SignalRow(idempotency_key="tv:review", source="tradingview", symbol="BTC-PERP", action="buy",
                              raw={}))  # fmt: skip
    engine.process_pending_signals()
    engine.step_market()
    (replayed,) = reviews(engine.db)
    assert len(claude_api.requests) == asked  # nothing asked
    assert (replayed.action, replayed.outcome, replayed.new_stop) == ("move_stop", "done", recorded.new_stop)
    assert replayed.prompt_hash == recorded.prompt_hash and stop_now(engine) == pytest.approx(tighter)


def test_budget_spent_means_no_review_asked(claude_api: FakeAnthropic, make_settings: Any) -> None:
    _, engine = open_long(
        make_settings, claude_api, tool, **claude_settings(claude_api, ai_daily_budget_usd=0.001)
    )
    asked = len(claude_api.requests)
    engine.step_market()
    (row,) = reviews(engine.db)
    assert row.outcome == "budget" and row.ai_call_id is None and len(claude_api.requests) == asked


class Said(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_follow_says_once_at_start_that_review_exits_does_nothing(make_settings: Any) -> None:
    settings = make_settings(
        socket_url="http://127.0.0.1:9", market_data_source="replay", ai_model_provider="follow"
    )
    said, reviews_logger = Said(), logging.getLogger("agent.engine.reviews")
    reviews_logger.addHandler(said)
    try:
        prepared_app(settings)
        engine: Engine = prepared_app(settings).extensions["engine"]  # a restart says it again, once
    finally:
        reviews_logger.removeHandler(said)
    events = [r for r in said.records if r.getMessage() == "review_exits_no_effect"]
    assert len(events) == 2 and events[0].fields["analyst"] == "follow"  # type: ignore[attr-defined]
    assert engine.reviews.reviewer is None


def test_the_rules_analyst_keeps_its_own_review_and_gets_no_ai_one(make_settings: Any) -> None:
    settings = make_settings(socket_url="http://127.0.0.1:9", market_data_source="replay")
    engine: Engine = prepared_app(settings).extensions["engine"]
    assert engine.reviews.reviewer is None and engine.manager._reviewer is not None


def test_a_reduce_halves_the_position_one_below_the_minimum_is_refused_and_hold_holds(
    claude_api: FakeAnthropic, make_settings: Any
) -> None:
    app, engine = open_long(make_settings, claude_api, tool, **claude_settings(claude_api))
    client, quantity = app.test_client(), held(engine)
    row = review_once(
        engine, claude_api, review_tool({"action": "reduce", "fraction": 0.5, "reason": "trim"})
    )
    assert (row.outcome, row.fraction) == ("done", 0.5) and row.client_id
    left = held(engine)
    assert 0 < left < quantity and left == pytest.approx(quantity - round(quantity * 0.5, 3), abs=1e-3)
    assert working_stops(engine) and sum(
        o.quantity for o in engine.exchange.open_orders("BTC-PERP") if o.order_type is not None
        and o.order_type.value == "STOP_MARKET"
    ) == pytest.approx(left)  # the protective stop follows the new quantity  # fmt: skip
    row = review_once(
        engine, claude_api, review_tool({"action": "reduce", "fraction": 0.01, "reason": "a hair"})
    )
    assert (row.outcome, row.rule) == ("refused", "min_quantity") and held(engine) == left
    row = review_once(engine, claude_api, review_tool({"action": "hold", "reason": "on plan"}))
    assert (row.action, row.outcome) == ("hold", "held") and held(engine) == left

    assert len(client.get("/api/reviews?symbol=BTCUSDT.P&limit=2", headers=AUTH).get_json()["reviews"]) == 2
    for query in ("limit=0", "limit=x", "symbol=%3F%3F%3F"):
        response = client.get(f"/api/reviews?{query}", headers=AUTH)
        assert response.status_code == 400 and response.get_json()["details"][0]["field"] in query
    assert client.get("/api/reviews").status_code == 401


def test_a_restart_keeps_the_triggers_state_the_timer_goes_on_from_the_last_review(
    claude_api: FakeAnthropic, make_settings: Any
) -> None:
    values = claude_settings(claude_api)
    _, engine = open_long(make_settings, claude_api, tool, **{**values, "ai_review_minutes": 2})
    engine.step_market()
    assert reviews(engine.db) == []
    first = review_once(engine, claude_api, review_tool({"action": "hold", "reason": "on plan"}))
    assert first.triggers == ["timer"]
    settings = make_settings(
        socket_url="http://127.0.0.1:9", market_data_source="replay", ai_review_minutes=2, **values
    )
    restarted: Engine = prepared_app(settings).extensions["engine"]  # nothing of the first in memory
    asked = len(claude_api.requests)
    due = first.market_time + timedelta(minutes=2)
    assert restarted.market_now() < first.market_time  # the replay goes on after the last booked fill
    while restarted.market_now() + timedelta(minutes=1) < due:  # from the entry it would be due already
        restarted.step_market()
        assert len(reviews(restarted.db)) == 1 and len(claude_api.requests) == asked
    second = review_once(restarted, claude_api, review_tool({"action": "hold", "reason": "still"}))
    assert second.triggers == ["timer"] and second.market_time - first.market_time == timedelta(minutes=2)
