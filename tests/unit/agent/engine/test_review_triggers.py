"""The review triggers on hand-made price paths: half-way to the target, 1 R against, a funding spike and a
regime change each fire once until re-armed; the timer per position; the quiet band never hides a firing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.engine.review_triggers import MarketFacts, PositionFacts, ReviewTriggers
from agent.risk.presets import policy_from_settings
from shared.config import load_settings
from shared.errors import ConfigError

T0 = datetime(2022, 1, 3, tzinfo=UTC)
LONG = PositionFacts("bfa-1", 1, 100.0, 10.0, 140.0, T0, "ranging")  # R 10, half-way at 120, -1 R at 90
SHORT = PositionFacts("bfa-2", -1, 100.0, 10.0, 60.0, T0, "ranging")  # half-way at 80, -1 R at 110


def run(
    triggers: ReviewTriggers, position: PositionFacts, closes: list[float], funding: list[float] | None = None,
    regimes: list[str] | None = None,
) -> list[list[str]]:  # fmt: skip
    """The triggers fired at each minute of the path."""
    fired = []
    for i, close in enumerate(closes):
        market = MarketFacts(
            T0 + timedelta(minutes=i + 1), close, funding[i] if funding else None,
            regimes[i] if regimes else "ranging",
        )  # fmt: skip
        fired.append([t.name for t in triggers.due("BTC-PERP", position, market)])
    return fired


def names(fired: list[list[str]]) -> list[str]:
    return [name for minute in fired for name in minute]


def test_half_way_fires_once_and_again_only_after_a_close_back_at_the_entry() -> None:
    triggers = ReviewTriggers(0, 0)
    fired = run(triggers, LONG, [105, 119, 120, 125, 130, 121, 101, 100, 110, 122])
    assert fired == [[], [], ["halfway"], [], [], [], [], [], [], ["halfway"]]
    short = run(ReviewTriggers(0, 0), SHORT, [95, 80, 70, 85, 79])
    assert names(short) == ["halfway"]


def test_one_r_against_fires_once_until_the_price_is_back_at_the_entry() -> None:
    fired = run(ReviewTriggers(0, 0), LONG, [95, 91, 90, 85, 89, 99, 100, 92, 90])
    assert fired == [[], [], ["adverse_1r"], [], [], [], [], [], ["adverse_1r"]]
    assert names(run(ReviewTriggers(0, 0), SHORT, [105, 110, 115, 101])) == ["adverse_1r"]
    no_risk = PositionFacts("bfa-3", 1, 100.0, 0.0, None, T0)
    assert names(run(ReviewTriggers(0, 0), no_risk, [50, 200, 50])) == []  # no R, no target: no event


def test_a_funding_spike_fires_once_and_rearms_at_half_the_threshold() -> None:
    rates = [0.0001, 0.0006, 0.0009, -0.0007, 0.0003, 0.0002, -0.0006]
    fired = run(ReviewTriggers(0, 0.0005), LONG, [100.0] * len(rates), funding=rates)
    assert fired == [[], ["funding_spike"], [], [], [], [], ["funding_spike"]]
    assert names(run(ReviewTriggers(0, 0), LONG, [100.0] * 3, funding=[0.01] * 3)) == []  # 0 = never


def test_a_regime_change_fires_on_each_new_label_and_unknown_is_no_label() -> None:
    regimes = ["ranging", "ranging", "unknown", "trending_up", "trending_up", "ranging"]
    fired = run(ReviewTriggers(0, 0), LONG, [100.0] * len(regimes), regimes=regimes)
    assert fired == [[], [], [], ["regime_change"], [], ["regime_change"]]
    unknown_at_entry = PositionFacts("bfa-4", 1, 100.0, 10.0, 140.0, T0, "unknown")
    assert names(run(ReviewTriggers(0, 0), unknown_at_entry, [100.0] * 2, regimes=["trending_up"] * 2)) == []


def test_the_timer_fires_every_period_and_any_review_restarts_it() -> None:
    fired = run(ReviewTriggers(3, 0), LONG, [100.0] * 7)
    assert fired == [[], [], ["timer"], [], [], ["timer"], []]
    fired = run(ReviewTriggers(3, 0), LONG, [100.0, 120.0, 110.0, 110.0, 110.0])  # half-way at minute 2
    assert fired == [[], ["halfway"], [], [], ["timer"]]
    assert names(run(ReviewTriggers(0, 0), LONG, [100.0] * 500)) == []  # 0 = no timer


def test_several_triggers_on_one_candle_make_one_review_and_a_new_position_is_armed_afresh() -> None:
    triggers = ReviewTriggers(1, 0.0005)
    (fired,) = run(triggers, LONG, [89.0], funding=[0.001], regimes=["trending_down"])
    assert fired == ["adverse_1r", "funding_spike", "regime_change", "timer"]
    assert run(triggers, LONG, [85.0], funding=[0.001], regimes=["trending_down"]) == [[]]  # all disarmed
    reopened = PositionFacts("bfa-5", 1, 100.0, 10.0, 140.0, T0, "trending_down")
    assert run(triggers, reopened, [85.0], funding=[0.001], regimes=["trending_down"]) == [
        ["adverse_1r", "funding_spike", "timer"]
    ]


closes = st.lists(st.floats(min_value=50, max_value=150, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=100, deadline=None)
@given(closes, st.sampled_from([LONG, SHORT]))
def test_an_event_fires_again_only_after_the_price_went_back_to_the_entry(
    path: list[float], position: PositionFacts
) -> None:
    fired = run(ReviewTriggers(0, 0), position, path)
    for name in ("halfway", "adverse_1r"):
        minutes = [i for i, f in enumerate(fired) if name in f]
        for first, second in itertools.pairwise(minutes):
            between = path[first + 1 : second]
            if name == "halfway":
                assert any((c - position.entry_price) * position.sign <= 0 for c in between)
            else:
                assert any((c - position.entry_price) * position.sign >= 0 for c in between)


@settings(max_examples=100, deadline=None)
@given(closes, st.sampled_from([LONG, SHORT]), st.integers(min_value=0, max_value=30))
def test_the_quiet_band_never_hides_a_firing(
    path: list[float], position: PositionFacts, minutes: int
) -> None:
    """While the closes stay strictly inside the band and before its time, nothing fires (what lets a
    backtest skip those candles)."""
    triggers = ReviewTriggers(minutes, 0)
    for i, close in enumerate(path):
        band = triggers.quiet("BTC-PERP", position)
        now = T0 + timedelta(minutes=i + 1)
        fired = triggers.due("BTC-PERP", position, MarketFacts(now, close, None, "ranging"))
        inside = band.down < close < band.up and (band.at is None or now < band.at)
        if inside:
            assert fired == []


def test_bad_review_settings_fail_at_start_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(ai_review_minutes=-1, review_funding_rate=0.5)
    lines = caught.value.problems
    assert any(line.startswith("AI_REVIEW_MINUTES:") for line in lines)
    assert any(line.startswith("REVIEW_FUNDING_RATE:") for line in lines)
    policy = policy_from_settings(load_settings(ai_review_minutes=15, review_funding_rate=0.001))
    assert (policy.review_minutes, policy.review_funding_rate) == (15, 0.001)
