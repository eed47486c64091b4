"""Each signal is sized by its own source's record: the risk gate's trade statistics (win rate, payoff,
Kelly) are asked for the signal's source, and those of ``internal:ema_cross`` or ``strategy:<name>`` count
that source's trades only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.analytics.live import trade_records
from agent.backtest.run import BacktestRequest, backtest_settings, build_backtest_engine, replay
from agent.engine.engine import Engine
from shared.db import Database
from tests.unit.agent.backtest.test_backtest import data  # noqa: F401 - fixture

OVERRIDES = {
    "ai_model_provider": "follow", "internal_signals": "ema_cross", "min_confidence": 0, "kelly_fraction": 0,
    "strategies": "rsi_divergence,sr_break_volume",
}  # fmt: skip


def test_the_kelly_path_reads_each_sources_own_record(
    data: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str | None] = []
    original = Engine.trade_stats

    def spy(self: Engine, source: str | None = None, refresh: bool = True) -> Any:
        asked.append(source)
        return original(self, source, refresh)

    monkeypatch.setattr(Engine, "trade_stats", spy)
    request = BacktestRequest({"BTC-PERP": data}, overrides=OVERRIDES, progress=False)
    settings = backtest_settings(request)
    db = Database(settings.database_url)
    db.migrate()
    engine = build_backtest_engine(settings, request, db)
    engine.prepare()
    replay(engine, None, progress=False)
    engine.store.persist()
    trades = trade_records(db)
    sources = {t.signal_source for t in trades}
    assert {"internal:ema_cross", "strategy:rsi_divergence"} <= sources
    assert {"internal:ema_cross", "strategy:rsi_divergence"} <= set(asked)  # asked per signal's source
    assert set(asked) - {None} <= {
        "internal:ema_cross",
        "strategy:rsi_divergence",
        "strategy:sr_break_volume",
    }
    for source in sources:
        own = [t for t in trades if t.signal_source == source]
        stats = original(engine, source)
        assert (stats.trades, stats.wins) == (len(own), sum(t.pnl > 0 for t in own)), source
    assert original(engine).trades == len(trades)
    db.dispose()
