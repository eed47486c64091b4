"""Market specs: read from Bluefin Pro's exchange info or the shipped defaults; rounding and order checks."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.risk.sizing import floor_to_step
from shared.exchange.markets import (
    DEFAULTS_FILE,
    REFRESHED_FILE_NAME,
    MarketSpec,
    MarketSpecs,
    generic_spec,
    load_market_specs,
)
from shared.models import OrderRequest, OrderType, Side

INFO_MARKET = {
    "symbol": "SUI-PERP", "status": "ACTIVE", "tickSizeE9": "100000", "stepSizeE9": "1000000000",
    "minOrderQuantityE9": "1000000000", "maxLimitOrderQuantityE9": "1000000000000000",
    "maxMarketOrderQuantityE9": "50000000000000", "minOrderPriceE9": "10000000", "maxOrderPriceE9": "500000000000",
    "maintenanceMarginRatioE9": "25000000", "initialMarginRatioE9": "45000000", "defaultLeverageE9": "10000000000",
    "defaultMakerFeeE9": "100000", "defaultTakerFeeE9": "350000", "maxFundingRateE9": "1000000",
    "isolatedOnly": False,
}  # fmt: skip


def test_a_market_from_exchange_info() -> None:
    spec = MarketSpec.from_exchange_info(INFO_MARKET)
    assert spec.tick_size == Decimal("0.0001") and spec.step_size == Decimal("1")
    assert spec.min_quantity == Decimal("1") and spec.max_market_quantity == Decimal("50000")
    assert spec.maintenance_margin_ratio == 0.025 and spec.initial_margin_ratio == 0.045
    assert spec.max_leverage == 22.0  # 1 / 4.5 %
    assert spec.taker_fee == 0.00035 and spec.maker_fee == 0.0001 and spec.max_funding_rate == 0.001


def test_the_shipped_defaults_say_where_they_come_from_and_a_refresh_replaces_them(tmp_path: Path) -> None:
    defaults = load_market_specs(tmp_path)
    assert "DEFAULTS" in defaults.source and "contract-specs" in defaults.source
    assert defaults.get("BTC-PERP").step_size == Decimal("0.001")
    assert defaults.get("SUI-PERP").step_size == Decimal("1")
    refreshed = MarketSpecs.from_exchange_info({"markets": [INFO_MARKET]}, "SUI_STAGING")
    refreshed.write(tmp_path / REFRESHED_FILE_NAME, "SUI_STAGING")
    loaded = load_market_specs(tmp_path)
    assert "Bluefin Pro /v1/exchange/info (SUI_STAGING" in loaded.source
    assert loaded.get("SUI-PERP") == MarketSpec.from_dict(refreshed.get("SUI-PERP").to_dict(), loaded.source)
    assert not loaded.listed("BTC-PERP") and loaded.get("BTC-PERP").source.startswith("generic")
    assert DEFAULTS_FILE.exists()


def test_an_order_is_checked_against_its_market() -> None:
    btc = load_market_specs().get("BTC-PERP")
    ok = OrderRequest("c", "BTC-PERP", Side.BUY, 0.005, OrderType.LIMIT, price=50_000.1, leverage=3)
    assert btc.problems(ok) == []
    bad = OrderRequest("c", "BTC-PERP", Side.BUY, 0.0015, OrderType.LIMIT, price=50_000.15, leverage=30)
    problems = " | ".join(btc.problems(bad))
    assert "not a multiple of the step 0.001" in problems and "not a multiple of the tick 0.1" in problems
    assert "leverage 30 is above the market maximum 22" in problems
    tiny = OrderRequest("c", "BTC-PERP", Side.BUY, 0.0005, OrderType.MARKET)
    assert any("below the minimum 0.001" in p for p in btc.problems(tiny))
    big = OrderRequest("c", "BTC-PERP", Side.BUY, 11.0, OrderType.MARKET)
    assert any("above the market-order maximum 10" in p for p in btc.problems(big))
    below = OrderRequest("c", "BTC-PERP", Side.SELL, 0.001, OrderType.STOP_MARKET, trigger_price=400.0)
    assert any("trigger_price 400.0 is outside 500..500000" in p for p in btc.problems(below))


@given(
    quantity=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    step=st.sampled_from(["0.001", "0.01", "0.1", "1"]),
)
def test_sizes_floor_to_the_markets_step_never_above_and_within_one_step(quantity: float, step: str) -> None:
    spec = MarketSpec(**{**vars(generic_spec("X-PERP")), "step_size": Decimal(step)})
    floored = floor_to_step(quantity, float(spec.step_size))  # what sizing, targets and algos use
    assert spec.on_step(floored)
    assert floored <= quantity + 1e-9 * max(1.0, quantity)
    assert quantity - floored < float(step) + 1e-9 * max(1.0, quantity)


@given(price=st.floats(min_value=0.01, max_value=1e6, allow_nan=False), side=st.sampled_from(list(Side)))
def test_prices_round_to_the_tick_passively_away_from_the_market(price: float, side: Side) -> None:
    spec = load_market_specs().get("BTC-PERP")
    nearest, passive = spec.round_price(price), spec.round_price(price, side, passive=True)
    assert spec.on_tick(nearest) and spec.on_tick(passive)
    assert abs(nearest - price) <= 0.05 + 1e-6
    assert (passive <= price + 1e-9) if side is Side.BUY else (passive >= price - 1e-9)


def test_a_market_that_is_not_trading_refuses_orders() -> None:
    spec = MarketSpec.from_exchange_info({**INFO_MARKET, "status": "DELISTED"})
    assert not spec.trading
    request = OrderRequest("c", "SUI-PERP", Side.BUY, 1.0)
    assert spec.problems(request) == ["SUI-PERP is DELISTED, not trading"]


@pytest.mark.parametrize("symbol", ["BTC-PERP", "ETH-PERP", "SOL-PERP", "SUI-PERP"])
def test_every_shipped_market_round_trips_through_its_file_form(symbol: str) -> None:
    spec = load_market_specs().get(symbol)
    assert MarketSpec.from_dict(spec.to_dict(), spec.source) == spec
