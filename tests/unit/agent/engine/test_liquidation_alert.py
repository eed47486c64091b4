"""LIQUIDATION_ALERT_ATR: a hand-made mark path in, out and in again alerts exactly at the crossings (once per
position, re-armed only beyond REARM_FACTOR x the threshold); on a real engine the alert reaches the stream
and, through the notifier, a local JSON webhook."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from agent.engine.liquidation_alert import REARM_FACTOR, LiquidationWatch, distance_in_atr
from agent.risk.presets import policy_from_settings
from shared.config import load_settings
from shared.db import Database
from shared.notify import NotificationHandler, Notifier
from tests.unit.agent.engine.test_engine import RecordingPublisher, add_signal, make_engine
from tests.unit.shared.test_notify import Receiver

# a long whose liquidation price is 30,000; ATR 500; alert within 3 ATRs (mark <= 31,500), re-armed beyond
# 3 x 1.2 = 3.6 ATRs (mark > 31,800)
LIQUIDATION, ATR = 30_000.0, 500.0


def crossings(watch: LiquidationWatch, path: list[float], quantity: float = 1.0, opened: str = "t0"):
    found = []
    for index, mark in enumerate(path):
        alert = watch.observe("BTC-PERP", quantity, opened, mark, LIQUIDATION, ATR)
        if alert is not None:
            found.append((index, alert.near, round(alert.distance_atr, 3)))
    return found


def test_a_long_alerts_when_it_comes_in_once_then_again_only_after_moving_back_out() -> None:
    assert REARM_FACTOR == 1.2
    #        0       1       2 in    3       4 band  5 out   6       7 in    8
    path = [34_000, 32_000, 31_400, 31_000, 31_600, 31_900, 33_000, 31_500, 29_000]
    assert crossings(LiquidationWatch(3.0), path) == [(2, True, 2.8), (5, False, 3.8), (7, True, 3.0)]


def test_a_short_is_measured_above_and_a_new_position_starts_afresh() -> None:
    watch = LiquidationWatch(3.0)
    # a short liquidated at 30,000 from below: 2 ATRs under it is near; beyond it counts as 0 ATRs
    assert distance_in_atr(-1.0, 29_000.0, LIQUIDATION, ATR) == 2.0
    assert distance_in_atr(-1.0, 30_500.0, LIQUIDATION, ATR) == 0.0
    assert crossings(watch, [27_000, 29_000, 29_200], quantity=-1.0) == [(1, True, 2.0)]
    # the same market, a position opened again: alerted again although the mark never moved out
    assert crossings(watch, [29_200], quantity=-1.0, opened="t1") == [(0, True, 1.6)]


def test_off_at_zero_and_silent_without_a_liquidation_price_or_an_atr() -> None:
    assert crossings(LiquidationWatch(0.0), [31_000, 29_000]) == []
    watch = LiquidationWatch(3.0)
    assert watch.observe("BTC-PERP", 1.0, "t0", 31_000.0, None, ATR) is None
    assert watch.observe("BTC-PERP", 1.0, "t0", 31_000.0, LIQUIDATION, None) is None
    assert watch.observe("BTC-PERP", 0.0, "t0", 31_000.0, LIQUIDATION, ATR) is None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_on_an_engine_the_alert_is_streamed_and_notified_once(database: Database, receiver: Receiver) -> None:
    """A real paper position (3x: its liquidation about a third below the entry): with a threshold wider
    than its distance it is near at once: one ``liquidation_alert`` on the stream, one notification, not
    repeated on the next checks; with a narrow threshold it is back out and the banner is cleared."""
    publisher = RecordingPublisher()
    engine = make_engine(database, publisher)
    engine.prepare()
    add_signal(database, "k1", "buy")
    assert engine.process_pending_signals() == 1
    notifier = Notifier([receiver.url()], service="agent", mode="paper", tick_s=0.02)
    handler = NotificationHandler(notifier, "agent")
    log = logging.getLogger("agent.engine.liquidation_alert")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        watch = LiquidationWatch(10_000.0)
        (alert,) = watch.check(engine)
        assert watch.check(engine) == [] and watch.check(engine) == []  # once per position
        assert alert.near and alert.symbol == "BTC-PERP" and alert.quantity > 0
        assert alert.liquidation < alert.mark and alert.distance_atr == pytest.approx(
            (alert.mark - alert.liquidation) / alert.atr
        )
        streamed = [data for name, data in publisher.events if name == "liquidation_alert"]
        assert streamed == [alert.as_dict()]
        (text,) = receiver.wait(1)
        assert "BTC-PERP: Liquidation" in text and "liquidation near: long" in text
        assert "LIQUIDATION_ALERT_ATR 10000" in text
        watch.threshold_atr = 1.0  # now far beyond 1.2 ATRs: back out
        (out,) = watch.check(engine)
        assert not out.near
        assert [d["near"] for n, d in publisher.events if n == "liquidation_alert"] == [True, False]
        assert notifier.flush(5.0) and len(receiver.bodies) == 1  # moving out is not notified
    finally:
        log.removeHandler(handler)
        notifier.close()


def test_the_loop_watches_with_the_configured_threshold(database: Database) -> None:
    policy = policy_from_settings(load_settings(liquidation_alert_atr=5, funding_horizon_hours=24))
    assert (policy.liquidation_alert_atr, policy.funding_horizon_hours) == (5.0, 24.0)
    engine = make_engine(database, RecordingPublisher(), policy=policy)
    assert engine.loop.liquidations.threshold_atr == 5.0
    assert policy_from_settings(load_settings()).liquidation_alert_atr == 3.0  # the default
