"""The rules analyst on the real BTC month: deterministic, multi-factor, rationales naming the values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
import pytest

from agent.analysis.base import MarketContext
from agent.analysis.rules import RulesAnalyst
from shared.marketdata.feeds import ReplayFeed
from shared.marketdata.funding import FundingRate
from shared.marketdata.snapshot import MarketState
from shared.models import DecisionAction, Position, Signal, SignalAction
from tests.conftest import REAL_CANDLES


def frame(candles: list) -> pd.DataFrame:  # type: ignore[type-arg]
    return pd.DataFrame(
        [(c.open, c.high, c.low, c.close, c.volume) for c in candles],
        columns=["open", "high", "low", "close", "volume"],
        index=pd.DatetimeIndex([c.open_time for c in candles]),
    )


def decision_list() -> list[tuple[int, str, str, float, str]]:
    feed = ReplayFeed(REAL_CANDLES, "BTC-PERP", start_index=0)
    state = MarketState("BTC-PERP", "replay")
    analyst = RulesAnalyst()
    history = []
    decisions = []
    for index in range(12_000):
        candle = feed.next_candle()
        state.add_candle(candle)
        history.append(candle)
        if index >= 1000 and index % 1000 == 0:
            context = MarketContext(
                "BTC-PERP", candle.close, frame(history[-300:]), Position("BTC-PERP", 0, 0), state.snapshot()
            )
            for action in (SignalAction.BUY, SignalAction.SELL):
                d = analyst.decide(Signal(f"{index}{action}", "test", "BTC-PERP", action), context)
                decisions.append((index, action.value, d.action.value, d.confidence, d.rationale))
    return decisions


@pytest.fixture(scope="module")
def decisions() -> list[tuple[int, str, str, float, str]]:
    return decision_list()


def test_same_inputs_same_decisions(decisions: list[tuple[int, str, str, float, str]]) -> None:
    assert decision_list() == decisions
    assert len(decisions) == 22


def test_rationales_name_the_indicator_values(decisions: list[tuple[int, str, str, float, str]]) -> None:
    assert all("RSI14=" in r and "EMA20=" in r and "MACD hist=" in r for *_, r in decisions)
    actions = {a for _, _, a, _, _ in decisions}
    assert {"open_long", "open_short", "hold"} <= actions  # it does discriminate on the real month
    assert any("1h trending" in r or "15m trending" in r for *_, r in decisions)  # higher timeframes are used
    assert all(0 <= c <= 0.95 for _, _, _, c, _ in decisions)


def test_book_and_funding_move_confidence_and_are_named() -> None:
    feed = ReplayFeed(REAL_CANDLES, "BTC-PERP", start_index=0)
    state = MarketState("BTC-PERP", "replay")
    candles = [feed.next_candle() for _ in range(400)]
    for candle in candles:
        state.add_candle(candle)
    plain = state.snapshot()
    leaning = replace(
        plain, book={"imbalance": 0.5}, funding=FundingRate("BTC-PERP", 0.0001, datetime.now(UTC))
    )
    analyst = RulesAnalyst()
    base = MarketContext(
        "BTC-PERP", candles[-1].close, frame(candles[-300:]), Position("BTC-PERP", 0, 0), plain
    )
    signal = Signal("k", "test", "BTC-PERP", SignalAction.BUY)
    without = analyst.decide(signal, base)
    with_extras = analyst.decide(signal, replace(base, snapshot=leaning))
    if without.action is DecisionAction.HOLD:
        pytest.skip("the market at this candle vetoes the buy")
    assert "order book leans with the trade: imbalance +0.50" in with_extras.rationale
    assert "funding costs 88% a year" in with_extras.rationale
    assert with_extras.confidence == pytest.approx(without.confidence)  # +0.05 book, -0.05 funding
    assert with_extras.factors["book_imbalance"] == 0.5
