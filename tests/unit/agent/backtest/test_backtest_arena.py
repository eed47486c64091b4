"""The arena in backtests on the real month: shadow analysts decide the same signals through the fake
Anthropic API (real HTTP) and never place an order; a Claude backtest replayed from recorded answers
(AI_CACHE=replay, no network) reports the baseline, the arena, the LLM cost and the PnL net of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from agent.backtest.run import BacktestRequest, run_backtest
from shared.db import AiCacheRow, AiCallRow, Database, OrderRow, ShadowTradeRow
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES
from tests.fakes.anthropic_api import FakeAnthropic

ROWS = 3_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "btc-3000.csv"
    real = load_candle_csv(REAL_CANDLES).iloc[:ROWS]
    real.assign(timestamp=real["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def api() -> Any:
    fake = FakeAnthropic()
    yield fake
    fake.stop()


def request(data: Path, database: Path, allow_live_ai: bool = False, **overrides: Any) -> BacktestRequest:
    values: dict[str, Any] = {"internal_signals": "ema_cross", "internal_signal_timeframe": "5m",
                              "kelly_fraction": 0, **overrides}  # fmt: skip
    return BacktestRequest({"BTC-PERP": data}, overrides=values, progress=False, allow_live_ai=allow_live_ai,
                           database_url=f"sqlite:///{database}")  # fmt: skip


def count(database: Path, column: Any, *where: Any) -> int:
    db = Database(f"sqlite:///{database}")
    with db.session() as session:
        found = int(session.scalar(select(func.count(column)).where(*where)) or 0)
    db.dispose()
    return found


def test_shadow_analysts_decide_the_same_signals_and_never_place_an_order(
    tmp_path: Path, data: Path, api: FakeAnthropic
) -> None:
    plain = run_backtest(request(data, tmp_path / "plain.db"))
    before = len(api.requests)
    shadowed = run_backtest(
        request(data, tmp_path / "shadow.db", allow_live_ai=True, ai_shadow_analysts="claude",
                anthropic_api_key="sk-ant-test-0000", anthropic_base_url=api.url)
    )  # fmt: skip
    calls = len(api.requests) - before
    assert shadowed.signals >= calls > 0  # claude was asked about the signals, over HTTP
    assert count(tmp_path / "shadow.db", OrderRow.id) == count(tmp_path / "plain.db", OrderRow.id) > 0
    assert [t.pnl for t in shadowed.trades] == [t.pnl for t in plain.trades]  # the real book is untouched
    claude_trades = count(tmp_path / "shadow.db", ShadowTradeRow.id, ShadowTradeRow.analyst == "claude")
    assert claude_trades > 0
    (claude,) = [r for r in shadowed.arena["arena"] if r["analyst"] == "claude"]
    assert claude["trades"] == claude_trades
    assert claude["llm_cost_usd"] == pytest.approx(calls * (1200 * 3 + 150 * 15) / 1e6)
    assert shadowed.arena["baseline"]["analyst"] == "follow" and shadowed.arena["baseline"]["trades"] > 0


def test_a_claude_backtest_replayed_from_recorded_answers_reports_the_arena(
    tmp_path: Path, data: Path, api: FakeAnthropic
) -> None:
    recorded = tmp_path / "record.db"
    claude = {"ai_model_provider": "claude", "anthropic_api_key": "sk-ant-test-0000",
              "anthropic_base_url": api.url}  # fmt: skip
    first = run_backtest(request(data, recorded, allow_live_ai=True, ai_cache="record", **claude))
    source, target = Database(f"sqlite:///{recorded}"), Database(f"sqlite:///{tmp_path / 'replay.db'}")
    target.migrate()
    with source.session() as session:
        answers = [(r.key, r.answer) for r in session.scalars(select(AiCacheRow))]
    with target.session() as session:
        session.add_all([AiCacheRow(key=k, answer=a) for k, a in answers])
    source.dispose()
    target.dispose()
    assert answers
    before = len(api.requests)
    out = tmp_path / "report"
    replayed = run_backtest(request(data, tmp_path / "replay.db", ai_cache="replay", **claude), out=out)
    assert len(api.requests) == before  # no network
    assert [t.pnl for t in replayed.trades] == [t.pnl for t in first.trades]
    report = json.loads((out / "report.json").read_text())
    assert {"baseline", "arena", "llm_cost_usd", "pnl_net_of_llm_cost"} <= report.keys()
    assert report["baseline"]["analyst"] == "follow" and report["baseline"]["trades"] > 0
    (row,) = report["arena"]
    assert row["analyst"] == "claude" and row["trades"] > 0
    calls = count(tmp_path / "replay.db", AiCallRow.id)
    assert calls > 0
    assert row["llm_cost_usd"] == pytest.approx(calls * (1200 * 3 + 150 * 15) / 1e6, rel=1e-6)
    assert report["llm_cost_usd"] == pytest.approx(row["llm_cost_usd"], rel=1e-6)
    pnl = replayed.metrics.final_equity - replayed.metrics.starting_equity
    assert report["pnl_net_of_llm_cost"] == pytest.approx(pnl - report["llm_cost_usd"], rel=1e-6, abs=1e-6)
    page = (out / "report.html").read_text()
    assert "<h2>Arena</h2>" in page and "follow (baseline)" in page


def test_the_shadow_books_are_the_same_with_and_without_the_fast_forward(tmp_path: Path, data: Path) -> None:
    """Skipped quiet candles reach the shadow books too: stops and targets fold in the same order."""
    fast = run_backtest(request(data, tmp_path / "fast.db", ai_shadow_analysts="rules"))
    slow = run_backtest(
        BacktestRequest(
            {"BTC-PERP": data}, overrides={"internal_signals": "ema_cross", "internal_signal_timeframe": "5m",
                                           "kelly_fraction": 0, "ai_shadow_analysts": "rules"},
            progress=False, fast_forward=False, database_url=f"sqlite:///{tmp_path / 'slow.db'}",
        )
    )  # fmt: skip
    assert fast.arena["baseline"]["trades"] > 0
    assert fast.arena == slow.arena
    reasons = count(tmp_path / "fast.db", ShadowTradeRow.id, ShadowTradeRow.exit_reason == "stop")
    assert reasons > 0  # some shadow trades were closed by a candle, not only by signals
