"""Replayed alerts (SIGNALS_REPLAY_FILE) read TradingView's position fields as the webhook does."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.engine.signals import read_alerts
from shared.alert_fields import intent_of
from shared.errors import InvalidInput
from shared.models import SignalAction


def test_positions_strategy_sources_and_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "alerts.csv"
    path.write_text(
        "time,symbol,action,strategy,market_position,prev_market_position,contracts\n"
        "2022-01-01T00:10:00Z,BTCUSDT.P,buy,Trend,long,flat,1\n"
        "2022-01-01T00:20:00Z,BTCUSDT.P,sell,Trend,flat,long,1\n"
        "2022-01-01T00:30:00Z,BTCUSDT.P,sell,,,,\n"
    )
    opened, closed, plain = read_alerts(path)
    assert (opened.action, intent_of(opened.raw)) == (SignalAction.BUY, "open")
    assert (closed.action, intent_of(closed.raw)) == (SignalAction.CLOSE, "close")  # not a short
    assert opened.source == "tradingview:Trend" and plain.source == "tradingview"
    assert plain.action is SignalAction.SELL and intent_of(plain.raw) == ""
    assert opened.raw["contracts"] == "1" and "time" not in opened.raw


def test_a_bad_position_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "alerts.csv"
    path.write_text("time,symbol,action,market_position\n2022-01-01T00:10:00Z,BTC-PERP,buy,up\n")
    with pytest.raises(InvalidInput, match="market_position 'up'"):
        read_alerts(path)
