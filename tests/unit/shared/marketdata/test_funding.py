from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.marketdata.funding import FundingRate, average_rate, funding_cost, funding_payment
from shared.models import Side

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_positive_rate_longs_pay_shorts_by_hand() -> None:
    rate = FundingRate("BTC-PERP", 0.0001, NOW)  # 0.01 % an hour
    assert funding_payment(0.0001, 50_000, Side.BUY) == pytest.approx(-5.0)
    assert funding_payment(0.0001, 50_000, Side.SELL) == pytest.approx(5.0)
    cost = funding_cost(rate, 50_000, Side.BUY)
    assert cost["per_interval"] == pytest.approx(5.0)
    assert cost["per_day"] == pytest.approx(120.0)
    assert cost["per_year"] == pytest.approx(43_800.0)
    assert cost["annual_fraction"] == pytest.approx(0.876)
    assert rate.annualised == pytest.approx(0.876)
    assert funding_cost(rate, 50_000, Side.SELL)["per_day"] == pytest.approx(-120.0)


def test_eight_hour_intervals() -> None:
    rate = FundingRate("BTC-PERP", 0.0003, NOW, interval_hours=8)
    assert funding_cost(rate, 10_000, Side.BUY)["per_day"] == pytest.approx(9.0)


def test_average_rate() -> None:
    assert average_rate([]) is None
    assert average_rate([FundingRate("X-PERP", r, NOW) for r in (0.0001, -0.0003)]) == pytest.approx(-0.0001)


@given(st.floats(-0.01, 0.01), st.floats(0, 1e7))
def test_long_and_short_payments_cancel(rate: float, notional: float) -> None:
    assert funding_payment(rate, notional, Side.BUY) + funding_payment(
        rate, notional, Side.SELL
    ) == pytest.approx(0)
