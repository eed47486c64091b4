"""AI_CACHE_DATABASE_URL: recorded answers kept in a database of their own (a backtest's journal is in
memory), so one journal records and another, fresh one replays with no HTTP call; a bad URL fails at start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from agent.analysis.base import MarketContext
from agent.analysis.factory import build_analyst
from shared.config import load_settings
from shared.db import AiCacheRow, AiCallRow, Database
from shared.errors import ConfigError
from shared.models import Signal, SignalAction
from tests.fakes.anthropic_api import FakeAnthropic
from tests.unit.agent.analysis.conftest import PRICE

DEAD = "http://127.0.0.1:9"


@pytest.fixture
def claude() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    yield fake
    fake.stop()


def rows(database: Database, column: Any) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count(column))) or 0)


def test_answers_recorded_in_their_own_database_are_replayed_into_a_fresh_journal(
    claude: FakeAnthropic, make_settings: Any, tmp_path: Path, context: MarketContext
) -> None:
    cache = f"sqlite:///{tmp_path / 'answers.db'}"
    common = {"ai_model_provider": "claude", "anthropic_api_key": "sk-ant-cache-0000",
              "ai_cache_database_url": cache}  # fmt: skip
    first, second = Database("sqlite:///:memory:"), Database("sqlite:///:memory:")
    first.migrate()
    second.migrate()
    signal = Signal("tv:cache", "tradingview", "BTC-PERP", SignalAction.BUY, price=PRICE)
    recording = make_settings(**common, anthropic_base_url=claude.url, ai_cache="record")
    recorded = build_analyst(recording, first).decide(signal, context)
    assert len(claude.requests) == 1
    answers = Database(cache)
    assert rows(answers, AiCacheRow.key) == 1 and rows(first, AiCacheRow.key) == 0  # not in the journal
    replaying = make_settings(**common, anthropic_base_url=DEAD, ai_cache="replay", ai_max_retries=0)
    replayed = build_analyst(replaying, second).decide(signal, context)
    assert replayed == recorded and len(claude.requests) == 1  # no HTTP call
    assert rows(second, AiCallRow.id) == 1  # the replayed call is audited in the fresh journal
    answers.dispose()


def test_a_cache_database_url_that_is_not_a_database_fails_at_start() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(ai_cache_database_url="answers.db")
    assert caught.value.problems == [
        "AI_CACHE_DATABASE_URL: must be empty or start with sqlite:/// or postgresql://"
    ]
