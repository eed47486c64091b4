"""Funding in the decision: the funding a new position is expected to pay over FUNDING_HORIZON_HOURS lowers
its reward/risk (reward reduced, risk increased), counts in the loss at the stop when sizing, and is shown in
the verdict. Hand-calculated cases and hypothesis invariants."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.risk.funding_cost import expected_funding, reward_risk
from agent.risk.gate import RiskContext, assess
from agent.risk.presets import PRESETS
from agent.risk.sizing import SizingInputs, loss_per_unit, size_position
from shared.exchange.paper import PaperConfig, PaperExchange
from shared.marketdata.funding import FundingRate
from shared.marketdata.series import FundingSeries
from shared.models import Decision, DecisionAction, Position, Signal, SignalAction

# every cap out of the way, Kelly off: the volatility rule binds; MIN_REWARD_RISK 1.5, horizon 8 h
POLICY = replace(
    PRESETS["moderate"], max_position_size=1e12, max_total_exposure=1e12, max_correlated_exposure=1e12,
    kelly_fraction=0.0, min_liquidation_atr=0.0, funding_horizon_hours=8.0,
)  # fmt: skip
FLAT = Position("BTC-PERP", 0.0, 0.0)


def context(**overrides: object) -> RiskContext:
    values: dict[str, object] = {
        "symbol": "BTC-PERP", "price": 40_000.0, "position": FLAT, "equity": 10_000.0,
        "free_collateral": 1e9, "atr": 100.0, "market_max_leverage": 20.0,
    }  # fmt: skip
    values.update(overrides)
    return RiskContext(**values)  # type: ignore[arg-type]


def long(stop: float = 39_000.0, tp: float | None = 41_600.0) -> Decision:
    return Decision(DecisionAction.OPEN_LONG, 0.9, "test", "rules", stop_loss=stop, take_profit=tp)


def short(stop: float = 41_000.0, tp: float | None = 38_400.0) -> Decision:
    return Decision(DecisionAction.OPEN_SHORT, 0.9, "test", "rules", stop_loss=stop, take_profit=tp)


BUY = Signal("k", "tradingview", "BTC-PERP", SignalAction.BUY)
SELL = Signal("k", "tradingview", "BTC-PERP", SignalAction.SELL)


def test_expected_funding_by_hand() -> None:
    """0.01 % an hour on a 40,000 long for 8 hours: 40,000 x 0.0001 x 8 = 32 USD a unit, 8 bps; a short
    earns it (negative, not counted); 8-hourly intervals divide it by 8; no rate or no horizon: nothing."""
    paid = expected_funding(0.0001, 1.0, 8.0, 40_000.0, 1)
    assert paid.per_unit == pytest.approx(32.0) and paid.counted == pytest.approx(32.0)
    assert paid.bps == pytest.approx(8.0)
    earned = expected_funding(0.0001, 1.0, 8.0, 40_000.0, -1)
    assert earned.per_unit == pytest.approx(-32.0) and earned.counted == 0.0
    assert expected_funding(0.0001, 8.0, 8.0, 40_000.0, 1).per_unit == pytest.approx(4.0)
    assert expected_funding(None, 1.0, 8.0, 40_000.0, 1).per_unit == 0.0
    assert expected_funding(0.0001, 1.0, 0.0, 40_000.0, 1).per_unit == 0.0


def test_reward_risk_with_funding_by_hand() -> None:
    """Entry 40,000, stop 39,000 (risk 1,000), target 41,600 (reward 1,600): 1.6 without funding; with 32 a
    unit (1,600 - 32) / (1,000 + 32) = 1568 / 1032 = 1.51938; with 160: 1440 / 1160 = 1.24138."""
    assert reward_risk(40_000.0, 41_600.0, 1_000.0) == pytest.approx(1.6)
    assert reward_risk(40_000.0, 41_600.0, 1_000.0, 32.0) == pytest.approx(1568 / 1032)
    assert reward_risk(40_000.0, 41_600.0, 1_000.0, 160.0) == pytest.approx(1440 / 1160)
    assert reward_risk(40_000.0, 41_600.0, 1_000.0, -500.0) == pytest.approx(1.6)  # a receipt is not counted


def test_the_verdict_shows_the_expected_funding_and_sizes_with_it() -> None:
    """Rate 0.01 %/h: reward/risk 1.51938 passes 1.5; the loss at the stop is 1,000 + 32 = 1,032 a unit, so
    10,000 x 1 % / 1,032 = 0.096899 -> 0.096 (0.1 without funding); funding cost 32 x 0.096 = 3.072 USD."""
    verdict = assess(long(), BUY, context(funding_rate=0.0001), POLICY)
    assert verdict.approved and verdict.quantity == pytest.approx(0.096)
    details = verdict.details
    assert details["reward_risk"] == pytest.approx(1568 / 1032, rel=1e-5)
    assert details["sizes"]["volatility"] == pytest.approx(100 / 1032, rel=1e-6)
    assert details["funding_cost_usd"] == pytest.approx(3.072)
    assert details["funding"]["bps"] == pytest.approx(8.0) and details["funding"]["horizon_hours"] == 8.0
    plain = assess(long(), BUY, context(), POLICY)
    assert plain.quantity == pytest.approx(0.1) and plain.details["funding_cost_usd"] == 0.0


def test_a_trade_that_funding_pushes_under_the_minimum_reward_risk_is_vetoed_naming_funding() -> None:
    """0.05 %/h over 8 h: 160 a unit, reward/risk 1.24 < 1.5 (1.6 without funding, which passes)."""
    assert assess(long(), BUY, context(funding_rate=0.0), POLICY).approved
    verdict = assess(long(), BUY, context(funding_rate=0.0005), POLICY)
    assert not verdict.approved and verdict.details["rule"] == "reward_risk"
    assert "reward/risk 1.24 below MIN_REWARD_RISK 1.5" in verdict.reason
    assert "funding" in verdict.reason and "1.60 without funding" in verdict.reason
    # the short of the same trade earns that funding: not counted, so its reward/risk stays 1.6
    assert assess(short(), SELL, context(funding_rate=0.0005), POLICY).approved
    # FUNDING_HORIZON_HOURS=0 leaves funding out of the decision
    no_horizon = replace(POLICY, funding_horizon_hours=0)
    assert assess(long(), BUY, context(funding_rate=0.0005), no_horizon).approved


def test_a_negative_rate_costs_the_short() -> None:
    verdict = assess(short(), SELL, context(funding_rate=-0.0005), POLICY)
    assert not verdict.approved and "funding" in verdict.reason


@settings(max_examples=300, deadline=None)
@given(
    equity=st.floats(100.0, 1e7),
    price=st.floats(0.5, 200_000.0),
    stop_fraction=st.floats(0.001, 0.3),
    direction=st.sampled_from([1, -1]),
    rate=st.floats(-0.003, 0.003),
    horizon=st.floats(0.0, 240.0),
    fee=st.floats(0.0, 0.001),
    slip=st.floats(0.0, 20.0),
    risk=st.floats(0.001, 0.05),
)
def test_the_loss_at_the_stop_with_expected_funding_stays_within_risk_per_trade(
    equity: float, price: float, stop_fraction: float, direction: int, rate: float, horizon: float,
    fee: float, slip: float, risk: float,
) -> None:  # fmt: skip
    distance = price * stop_fraction
    funding = expected_funding(rate, 1.0, horizon, price, direction)
    policy = replace(POLICY, risk_per_trade=risk)

    def sized(per_unit: float) -> float:
        return size_position(
            SizingInputs(
                equity=equity, free_collateral=1e15, price=price, stop_distance=distance, leverage=20.0,
                other_gross_notional=0.0, correlated_net=0.0, kelly_fraction=0.0, streak=1.0, step=1e-9,
                direction=direction, taker_fee=fee, slippage_bps=slip, funding_per_unit=per_unit,
            ),
            policy,
        ).quantity  # fmt: skip

    quantity = sized(funding.counted)
    loss = quantity * (loss_per_unit(price, distance, direction, fee, slip) + funding.counted)
    assert loss <= equity * risk * (1 + 1e-9)
    assert quantity <= sized(0.0)  # funding never makes a position larger


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(-0.002, 0.002),
    horizon=st.floats(0.0, 72.0),
    reward=st.floats(100.0, 10_000.0),
    distance=st.floats(50.0, 5_000.0),
)
def test_an_approved_long_keeps_its_reward_risk_net_of_funding(
    rate: float, horizon: float, reward: float, distance: float
) -> None:
    """Whatever the rate: an approved long's reward/risk net of the expected funding is at least the minimum,
    and the loss at its stop, funding included, is within RISK_PER_TRADE."""
    policy = replace(POLICY, funding_horizon_hours=horizon)
    verdict = assess(long(40_000.0 - distance, 40_000.0 + reward), BUY, context(funding_rate=rate), policy)
    funding = expected_funding(rate, 1.0, horizon, 40_000.0, 1)
    if verdict.approved:
        assert reward_risk(40_000.0, 40_000.0 + reward, distance, funding.counted) >= policy.min_reward_risk
        budget = 10_000.0 * policy.risk_per_trade * (1 + 1e-9)
        assert verdict.quantity * (distance + funding.counted) <= budget
    else:
        assert verdict.details["rule"] in ("reward_risk", "size", "liquidation")


def test_the_paper_exchange_expects_its_series_rate_at_the_clock_else_the_predicted_rate() -> None:
    """The rate a decision in a backtest or paper trading expects: the funding series' latest at the market
    clock; without a series the predicted next rate of the feed, else its latest; nothing before either."""
    now = datetime(2022, 1, 3, 12, 0, tzinfo=UTC)
    paper = PaperExchange(None, PaperConfig(slippage_bps=0.0))
    paper.on_price("BTC-PERP", 40_000.0, now)
    assert paper.expected_funding_rate("BTC-PERP") is None
    paper.set_funding_rate(FundingRate("BTC-PERP", 0.0001, now))
    assert paper.expected_funding_rate("BTC-PERP") == 0.0001
    paper.set_funding_rate(FundingRate("BTC-PERP", 0.0001, now, predicted=0.0003))
    assert paper.expected_funding_rate("BTC-PERP") == 0.0003
    stamp = int(now.timestamp())
    times = np.array([stamp - 3600, stamp + 1800], dtype=np.int64)
    paper.set_funding_series(FundingSeries("BTC-PERP", times, np.array([-0.0002, 0.0009])))
    assert paper.expected_funding_rate("BTC-PERP") == -0.0002
    paper.on_price("BTC-PERP", 40_000.0, now + timedelta(hours=1))
    assert paper.expected_funding_rate("BTC-PERP") == 0.0009
