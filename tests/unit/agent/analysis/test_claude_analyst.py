"""ClaudeAnalyst through the real anthropic SDK against a fake Messages API on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import select

from agent.analysis.audit import AuditLog
from agent.analysis.base import MarketContext
from agent.analysis.claude import ClaudeAnalyst, cost_usd
from agent.analysis.resilient import ResilientAnalyst
from agent.analysis.rules import RulesAnalyst
from shared.db import AiCallRow, Database
from shared.errors import InvalidInput, Temporary
from shared.marketdata.feeds import load_candle_csv
from shared.models import DecisionAction, Signal, SignalAction
from tests.conftest import REAL_CANDLES
from tests.fakes.anthropic_api import GOOD, FakeAnthropic, message, tool
from tests.unit.agent.analysis.conftest import PRICE
from tests.unit.agent.engine.test_engine import add_signal


@pytest.fixture(scope="module")
def api() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.start()
    yield fake
    fake.stop()


def signal(key: str = "tv:1") -> Signal:
    return Signal(key, "tradingview", "BTC-PERP", SignalAction.BUY, price=PRICE)


def analyst(api: FakeAnthropic, database: Database, timeout_s: float = 5.0) -> ClaudeAnalyst:
    api.queue.clear()
    return ClaudeAnalyst(
        "sk-ant-test", AuditLog(database), base_url=api.url, timeout_s=timeout_s, max_retries=1
    )


def calls(database: Database) -> list[AiCallRow]:
    with database.session() as session:
        return list(session.scalars(select(AiCallRow).order_by(AiCallRow.id)))


def test_good_decision_with_forced_tool_and_audit(
    api: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    claude = analyst(api, database)
    decision = claude.decide(signal(), context)
    assert decision.action is DecisionAction.OPEN_LONG and decision.confidence == 0.8
    assert (
        decision.stop_loss == 40_000.0 and decision.take_profit == 60_000.0 and decision.analyst == "claude"
    )
    request = api.requests[-1]["body"]
    assert request["tool_choice"] == {"type": "tool", "name": "trade_decision"}
    assert request["tools"][0]["name"] == "trade_decision" and "RSI " in request["messages"][0]["content"]
    assert api.requests[-1]["api_key"] == "sk-ant-test"
    (call,) = calls(database)
    assert call.input_tokens == 1200 and call.output_tokens == 150
    assert call.cost_usd == pytest.approx(cost_usd("claude-sonnet-4-6", 1200, 150)) == pytest.approx(0.00585)
    assert (
        call.prompt_version == "decision_v2"
        and len(call.prompt_hash) == 64
        and call.parsed["action"] == "open_long"
    )
    assert "sk-ant-test" not in (call.raw_output + call.prompt)


@pytest.mark.parametrize(
    ("behaviour", "field"),
    [
        (
            ("json", 200, message([{"type": "text", "text": "I think you should buy."}], "end_turn")),
            "content",
        ),
        (("json", 200, tool({**GOOD, "confidence": 1.7})), "confidence"),
        (("json", 200, tool({**GOOD, "leverage": 50})), "leverage"),
        (("json", 200, tool({**GOOD, "stop_loss": 50_000.0})), "stop_loss"),
        (("json", 200, tool({k: v for k, v in GOOD.items() if k != "rationale"})), "rationale"),
        (("json", 200, message([], "max_tokens")), "stop_reason"),
        (("json", 200, message([{"type": "text", "text": "I can't help"}], "refusal")), "stop_reason"),
    ],
)
def test_invalid_answers_are_never_decisions(
    api: FakeAnthropic, database: Database, context: MarketContext, behaviour: tuple[object, ...], field: str
) -> None:
    claude = analyst(api, database)
    api.queue.append(behaviour)
    with pytest.raises(InvalidInput) as caught:
        claude.decide(signal(), context)
    assert any(p.field == field for p in caught.value.problems)
    (call,) = calls(database)
    assert field in call.validation_errors


def test_malformed_json_is_a_provider_failure(
    api: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    claude = analyst(api, database)
    api.queue.extend([("raw", 200, "{not json"), ("raw", 200, "{not json")])
    with pytest.raises((Temporary, InvalidInput)):
        claude.decide(signal(), context)


def test_429_then_success_is_retried_by_the_sdk(
    api: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    claude = analyst(api, database)
    api.queue.append(
        ("json", 429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    )
    assert claude.decide(signal(), context).action is DecisionAction.OPEN_LONG
    assert len(api.requests) >= 2


def test_overloaded_until_the_breaker_opens_then_rules_decide(
    api: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    claude = analyst(api, database)
    overloaded = (
        "json",
        529,
        {"type": "error", "error": {"type": "overloaded_error", "message": "overloaded"}},
    )
    api.queue.extend(
        [overloaded] * 6
        + [("json", 500, {"type": "error", "error": {"type": "api_error", "message": "x"}})] * 2
    )
    resilient = ResilientAnalyst(
        claude, RulesAnalyst(), AuditLog(database).spent_today, 5.0, failures_to_open=3
    )
    for index in range(3):
        decision = resilient.decide(signal(f"tv:{index}"), context)
        assert decision.analyst == "rules" and "claude failed" in decision.rationale
    assert resilient.degraded
    sent = len(api.requests)
    decision = resilient.decide(signal("tv:9"), context)
    assert decision.analyst == "rules" and "degraded" in decision.rationale
    assert len(api.requests) == sent  # the open breaker does not call the provider


def test_a_hang_past_the_timeout_is_a_failure(
    api: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    claude = analyst(api, database, timeout_s=0.5)
    claude._client = claude._client.with_options(max_retries=0)
    api.queue.append(("hang", 2.0))
    with pytest.raises(Temporary):
        claude.decide(signal(), context)
    assert "Timeout" in calls(database)[-1].error


def test_daily_budget_hands_over_to_rules(
    api: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    claude = analyst(api, database)
    resilient = ResilientAnalyst(claude, RulesAnalyst(), lambda: 5.01, 5.0)
    sent = len(api.requests)
    decision = resilient.decide(signal(), context)
    assert decision.analyst == "rules" and "budget" in decision.rationale and len(api.requests) == sent


def test_schema_sent_as_tool_input_is_the_decision_model(
    api: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    analyst(api, database).decide(signal(), context)
    schema = api.requests[-1]["body"]["tools"][0]["input_schema"]
    assert set(schema["required"]) == {"action", "confidence", "rationale"}
    assert schema["properties"]["confidence"]["maximum"] == 1
    json.dumps(schema)
    assert isinstance(pd.Timestamp.now(), pd.Timestamp)


def test_alert_to_claude_to_stored_decision_with_cost_to_order(
    api: FakeAnthropic, make_settings: object
) -> None:
    """End to end in the agent: a signal, Claude (fake server) decides, the decision is stored with its
    tokens and cost and viewable at /api/decisions/<id>, and the order is placed."""
    from agent.api.app import create_app
    from agent.engine.engine import Engine
    from shared.db import OrderRow
    from tests.conftest import TOKEN

    api.queue.clear()
    price = float(load_candle_csv(REAL_CANDLES)["close"].iloc[299])
    api.queue.append(("json", 200, tool({**GOOD, "stop_loss": price * 0.98, "take_profits": [price * 1.05]})))
    settings = make_settings(  # type: ignore[operator]
        socket_url="http://127.0.0.1:9", ai_model_provider="claude", anthropic_api_key="sk-ant-e2e-000000",
        anthropic_base_url=api.url, market_data_source="replay",
    )  # fmt: skip
    app = create_app(settings, start_engine=False)
    engine: Engine = app.extensions["engine"]
    engine.prepare()
    db: Database = app.extensions["db"]
    add_signal(db, "tv:e2e", "buy")
    engine.process_pending_signals()
    client = app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    (decision,) = client.get("/api/decisions", headers=auth).get_json()["decisions"]
    assert decision["analyst"] == "claude" and decision["action"] == "open_long" and decision["risk_approved"]
    # the whole proposal is kept with the decision; Claude's leverage (2) is used, below the preset cap
    assert decision["proposal"]["leverage"] == 2 and decision["proposal"]["time_horizon"] == "intraday"
    assert decision["risk"]["leverage"] == 2
    detail = client.get(f"/api/decisions/{decision['id']}", headers=auth).get_json()
    (call,) = detail["ai_calls"]
    assert call["input_tokens"] == 1200 and call["cost_usd"] > 0 and call["prompt_version"] == "decision_v2"
    with db.session() as session:
        roles = sorted(o.role for o in session.scalars(select(OrderRow)) if o.status in ("FILLED", "OPEN"))
    assert roles == ["entry", "partial_take_profit", "stop_loss", "take_profit"]  # Claude's stop and target
    status = client.get("/api/status", headers=auth).get_json()
    assert status["engine"]["analyst"] == "claude" and status["engine"]["analyst_degraded"] is False
    assert "sk-ant-e2e-000000" not in json.dumps(status)

    # the feedback loop: once that trade is closed, Claude's next prompt carries its outcome, by source
    first_prompt = api.requests[-1]["body"]["messages"][0]["content"]
    assert "This source's record with you: no closed trades from this source yet" in first_prompt
    add_signal(db, "tv:close", "close")
    api.queue.append(("json", 200, tool({**GOOD, "action": "close"})))
    engine.process_pending_signals()
    (trade,) = client.get("/api/trades", headers=auth).get_json()["trades"]
    add_signal(db, "tv:again", "buy")
    api.queue.append(("json", 200, tool({**GOOD, "action": "hold"})))
    engine.process_pending_signals()
    prompt = api.requests[-1]["body"]["messages"][0]["content"]
    win_rate = 1.0 if trade["pnl"] > 0 else 0.0
    assert (
        'This source\'s record with you: {"average_r": ' in prompt
        and f'"trades": 1, "win_rate": {win_rate}' in prompt
    )
    assert '"exit": "close_signal"' in prompt  # the last trades list


def test_record_then_replay_without_network(
    api: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    from agent.analysis.audit import ResponseCache

    api.queue.clear()
    recorder = ClaudeAnalyst(
        "sk-ant-test", AuditLog(database), base_url=api.url, cache=ResponseCache(database, "record")
    )
    recorded = recorder.decide(signal("tv:rec"), context)
    sent = len(api.requests)
    offline = ClaudeAnalyst(  # nothing listens there: any network use would fail
        "sk-ant-test", AuditLog(database), base_url="http://127.0.0.1:9", max_retries=0,
        cache=ResponseCache(database, "replay"),
    )  # fmt: skip
    assert offline.decide(signal("tv:rec"), context) == recorded
    assert len(api.requests) == sent
    other = MarketContext(context.symbol, context.price, context.candles.iloc[:-1], context.position)
    with pytest.raises(Temporary, match="no answer"):
        offline.decide(signal("tv:rec"), other)  # different inputs: not recorded
