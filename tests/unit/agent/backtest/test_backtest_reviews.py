"""AI position reviews in a backtest on the real month (Claude through the fake Anthropic API): the
fast-forward over quiet candles stops wherever a review trigger may fire, so the reviews (their market
time, triggers and outcome) are the same as when every candle is stepped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agent.backtest.run import BacktestRequest, run_backtest
from shared.db import Database, PositionReviewRow
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES
from tests.fakes.anthropic_api import FakeAnthropic

ROWS = 1_500


@pytest.fixture(scope="module")
def api() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    yield fake
    fake.stop()


def reviews(path: Path) -> list[tuple[str, tuple[str, ...], str]]:
    db = Database(f"sqlite:///{path}")
    with db.session() as session:
        rows = session.scalars(select(PositionReviewRow).order_by(PositionReviewRow.id))
        found = [(r.market_time.isoformat(), tuple(r.triggers), r.outcome) for r in rows]
    db.dispose()
    return found


def test_the_reviews_are_the_same_with_and_without_the_fast_forward(
    tmp_path: Path, api: FakeAnthropic
) -> None:
    data = tmp_path / "btc.csv"
    real = load_candle_csv(REAL_CANDLES).iloc[:ROWS]
    real.assign(timestamp=real["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(data, index=False)
    overrides: dict[str, Any] = {
        "internal_signals": "ema_cross", "internal_signal_timeframe": "5m", "kelly_fraction": 0,
        "ai_model_provider": "claude", "anthropic_api_key": "sk-ant-test-0000", "anthropic_base_url": api.url,
    }  # fmt: skip
    for fast in (True, False):
        run_backtest(
            BacktestRequest({"BTC-PERP": data}, overrides=overrides, progress=False, allow_live_ai=True,
                            fast_forward=fast, database_url=f"sqlite:///{tmp_path / f'{fast}.db'}")
        )  # fmt: skip
    fast, slow = reviews(tmp_path / "True.db"), reviews(tmp_path / "False.db")
    assert fast == slow
    triggers = {t for _, fired, _ in fast for t in fired}
    assert {"timer", "regime_change"} <= triggers
    # the fake answers every prompt with a trade decision: each review is a malformed answer, no action
    assert {outcome for _, _, outcome in fast} == {"invalid"}
