"""Performance net of LLM cost: per analyst (the provider called) and per signal source (the engine
analyst's calls, by the signal they decided), and for the whole book."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.analytics.live import journal_performance, llm_costs
from agent.analytics.performance import TradeRecord
from shared.db import AiCallRow, Database, SignalRow

T0 = datetime(2022, 1, 3, tzinfo=UTC)


def trade(pnl: float, source: str, analyst: str) -> TradeRecord:
    return TradeRecord("BTC-PERP", "BUY", 1.0, 100.0, 100.0 + pnl, pnl, 0.0, T0, T0 + timedelta(hours=1),
                       "stop", signal_source=source, analyst=analyst)  # fmt: skip


def test_pnl_gross_and_net_of_llm_cost_per_analyst_and_signal_source(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'perf.db'}")
    db.migrate()
    with db.session() as session:
        for key, source in (("tv:1", "tradingview"), ("int:1", "internal:ema_cross")):
            session.add(SignalRow(idempotency_key=key, source=source, symbol="BTC-PERP", action="buy"))
        for provider, key, cost in (
            ("claude", "tv:1", 0.5),
            ("claude", "int:1", 0.25),
            ("perplexity", "tv:1", 2.0),
        ):
            session.add(AiCallRow(provider=provider, model="m", prompt_version="v", prompt_hash="h",
                                  signal_key=key, prompt="p", cost_usd=cost))  # fmt: skip
    costs = llm_costs(db, "claude")
    assert costs.by_analyst == {"claude": 0.75, "perplexity": 2.0}
    assert costs.by_source == {"tradingview": 0.5, "internal:ema_cross": 0.25}  # the engine analyst's calls
    trades = [trade(10.0, "tradingview", "claude"), trade(-4.0, "internal:ema_cross", "claude"),
              trade(3.0, "tradingview", "rules")]  # fmt: skip
    report = journal_performance(trades, 10_000.0, llm_cost=costs)
    claude = report["by_analyst"]["claude"]
    assert (claude["pnl_gross"], claude["llm_cost_usd"]) == (6.0, 0.75)
    assert claude["pnl_net_of_llm_cost"] == pytest.approx(5.25)
    assert report["by_analyst"]["rules"]["pnl_net_of_llm_cost"] == 3.0
    assert report["by_analyst"]["perplexity"]["trade_count"] == 0  # decided (a shadow), never traded
    assert report["by_analyst"]["perplexity"]["pnl_net_of_llm_cost"] == -2.0
    tradingview = report["by_signal_source"]["tradingview"]
    assert tradingview["pnl_gross"] == 13.0 and tradingview["pnl_net_of_llm_cost"] == pytest.approx(12.5)
    assert report["by_signal_source"]["internal:ema_cross"]["pnl_net_of_llm_cost"] == pytest.approx(-4.25)
    assert report["pnl_gross"] == 9.0 and report["llm_cost_usd"] == 2.75
    assert report["pnl_net_of_llm_cost"] == pytest.approx(6.25)
    assert "llm_cost_usd" not in journal_performance(trades, 10_000.0)
    db.dispose()
