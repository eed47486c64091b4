"""What the AI analysts' tests share: the market they decide on (the first 300 real minutes)."""

from __future__ import annotations

import pytest

from agent.analysis.base import MarketContext
from shared.marketdata.feeds import load_candle_csv
from shared.models import Position
from tests.conftest import REAL_CANDLES

PRICE = 46_800.0


@pytest.fixture
def context() -> MarketContext:
    candles = load_candle_csv(REAL_CANDLES).iloc[:300].set_index("timestamp")
    return MarketContext("BTC-PERP", PRICE, candles, Position("BTC-PERP", 0.0, 0.0))
