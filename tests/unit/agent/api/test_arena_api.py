"""GET /api/arena in the agent: a shadow Claude (the fake Anthropic API, real HTTP) decides the same signal
as the engine's rules analyst in its own shadow book; the paper exchange gets no order from it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.engine.engine import Engine
from shared.db import Database, OrderRow, PaperOrderRow, ShadowTradeRow
from tests.conftest import TOKEN
from tests.fakes.anthropic_api import FakeAnthropic
from tests.unit.agent.conftest import prepared_app
from tests.unit.agent.engine.test_engine import add_signal, count

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def api() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    yield fake
    fake.stop()


def decide_one(settings: Any) -> tuple[Any, Database]:
    app = prepared_app(settings)
    engine: Engine = app.extensions["engine"]
    db: Database = app.extensions["db"]
    add_signal(db, "tv:arena", "buy")
    engine.process_pending_signals()
    return app, db


def test_shadow_claude_decides_the_signal_and_places_no_order(
    api: FakeAnthropic, make_settings: Any, tmp_path: Path
) -> None:
    common = {"socket_url": "http://127.0.0.1:9", "market_data_source": "replay", "kelly_fraction": 0}
    _, plain = decide_one(make_settings(database_url=f"sqlite:///{tmp_path / 'plain.db'}", **common))
    before = len(api.requests)
    app, db = decide_one(
        make_settings(
            database_url=f"sqlite:///{tmp_path / 'arena.db'}", ai_shadow_analysts="claude",
            anthropic_api_key="sk-ant-test-0000", anthropic_base_url=api.url, **common,
        )
    )  # fmt: skip
    assert len(api.requests) == before + 1  # claude was asked, over HTTP
    assert count(db, OrderRow) == count(plain, OrderRow)  # the shadow placed nothing
    assert count(db, PaperOrderRow) == count(plain, PaperOrderRow)
    assert count(db, ShadowTradeRow) >= 2  # follow and claude opened shadow longs
    body = app.test_client().get("/api/arena", headers=AUTH).get_json()
    assert body["baseline"]["analyst"] == "follow" and body["baseline"]["trades"] == 1
    rows = {r["analyst"]: r for r in body["arena"]}
    assert set(rows) == {"rules", "claude"}
    assert rows["claude"]["trades"] == 1 and rows["claude"]["llm_cost_usd"] == pytest.approx(
        (1200 * 3 + 150 * 15) / 1e6
    )
    assert body["llm_cost_usd"] == pytest.approx(rows["claude"]["llm_cost_usd"])
    for key in ("pnl", "return_pct", "max_drawdown_pct", "sharpe", "win_rate", "pnl_net_of_llm_cost"):
        assert key in rows["claude"]
    signal = app.test_client().get("/api/arena/signals/1", headers=AUTH).get_json()
    assert {t["analyst"] for t in signal["trades"]} >= {"follow", "claude"}
    perf = app.test_client().get("/api/performance", headers=AUTH).get_json()
    assert perf["llm_cost_usd"] == pytest.approx(body["llm_cost_usd"])
    assert perf["by_analyst"]["claude"]["pnl_net_of_llm_cost"] == pytest.approx(-body["llm_cost_usd"])


def test_the_decision_story_shows_what_each_shadow_book_did_with_its_signal(
    api: FakeAnthropic, make_settings: Any, tmp_path: Path
) -> None:
    """GET /api/decisions/<id> has the shadow trades of its signal, as /api/arena/signals/<id> lists them,
    each with its role and the LLM cost of its analyst's calls on that signal (Claude's one call; none for
    follow and rules); a later sell closes the follow baseline's long, shown as "closed" in its story."""
    app, db = decide_one(
        make_settings(
            database_url=f"sqlite:///{tmp_path / 'story.db'}", ai_shadow_analysts="claude",
            anthropic_api_key="sk-ant-test-0000", anthropic_base_url=api.url, socket_url="http://127.0.0.1:9",
            market_data_source="replay", kelly_fraction=0,
        )
    )  # fmt: skip
    client = app.test_client()
    (decision,) = client.get("/api/decisions", headers=AUTH).get_json()["decisions"]
    story = client.get(f"/api/decisions/{decision['id']}", headers=AUTH).get_json()
    listed = client.get(f"/api/arena/signals/{decision['signal_id']}", headers=AUTH).get_json()["trades"]
    shadow = story["shadow"]
    assert [{k: v for k, v in t.items() if k not in ("role", "llm_cost_usd")} for t in shadow] == listed
    by_analyst = {t["analyst"]: t for t in shadow}
    assert {"follow", "claude"} <= set(by_analyst)
    assert all(t["role"] == "opened" and t["side"] == "BUY" for t in shadow)
    assert by_analyst["claude"]["llm_cost_usd"] == pytest.approx((1200 * 3 + 150 * 15) / 1e6)
    assert by_analyst["follow"]["llm_cost_usd"] == 0.0 and by_analyst["follow"]["entry_price"] > 0
    assert "funding_cost_usd" in story["decision"]["risk"]  # funding in the verdict (0: no rate known)
    engine: Engine = app.extensions["engine"]
    add_signal(db, "tv:arena-sell", "sell")
    engine.process_pending_signals()
    decisions = client.get("/api/decisions", headers=AUTH).get_json()["decisions"]
    later = next(d for d in decisions if d["id"] != decision["id"])
    closing = client.get(f"/api/decisions/{later['id']}", headers=AUTH).get_json()["shadow"]
    closed = [t for t in closing if t["role"] == "closed"]
    assert any(t["analyst"] == "follow" and t["exit_price"] is not None for t in closed)
