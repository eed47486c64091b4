"""The chart endpoints: candles with their indicators, markers and price lines, the equity curve."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from agent.engine.engine import Engine
from shared.db import Database, OrderRow
from shared.marketdata.snapshot import MarketState
from shared.models import Candle
from tests.unit.agent.api.test_app import AUTH, add_signal


def engine_of(client: FlaskClient) -> Engine:
    engine: Engine = client.application.extensions["engine"]
    return engine


def test_candles_are_the_market_states_with_their_indicators(client: FlaskClient) -> None:
    body = client.get("/api/candles?symbol=BTCUSDT.P&timeframe=5m&limit=40", headers=AUTH).get_json()
    expected = engine_of(client).markets["BTC-PERP"].recent("5m", 40)
    assert body["symbol"] == "BTC-PERP" and body["timeframe"] == "5m" and body["source"] == "replay"
    assert "1m" in body["timeframes"] and "1h" in body["timeframes"]
    assert len(body["candles"]) == len(expected) == 40
    for got, (candle, indicators) in zip(body["candles"], expected, strict=True):
        assert got["time"] == int(candle.open_time.timestamp())
        assert (got["open"], got["high"], got["low"], got["close"], got["volume"]) == (
            candle.open, candle.high, candle.low, candle.close, candle.volume,
        )  # fmt: skip
        for name in ("ema_20", "ema_50", "bb_upper", "bb_mid", "bb_lower"):
            value = indicators[name]
            assert got[name] == (value if math.isfinite(value) else None)
    last = body["candles"][-1]
    assert last["bb_lower"] < last["bb_mid"] < last["bb_upper"]
    times = [c["time"] for c in body["candles"]]
    assert times == sorted(times) and times[1] - times[0] == 300
    # without a timeframe: the base candles, 300 of them by default
    base = client.get("/api/candles?symbol=BTC-PERP", headers=AUTH).get_json()
    assert base["timeframe"] == "1m" and len(base["candles"]) == 300


def test_a_bad_query_is_a_400_naming_each_field(client: FlaskClient) -> None:
    answer = client.get("/api/candles?symbol=BTC-PERP&timeframe=7m&limit=0", headers=AUTH)
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == "invalid query"
    assert body["details"] == [
        {"field": "timeframe", "message": "must be one of 1m, 5m, 15m, 1h, 4h, 1d"},
        {"field": "limit", "message": "must be an integer from 1 to 500"},
    ]
    unknown = client.get("/api/chart/overlays?symbol=DOGE-PERP", headers=AUTH)
    assert unknown.status_code == 400
    assert unknown.get_json()["details"][0]["field"] == "symbol"
    assert "BTC-PERP" in unknown.get_json()["details"][0]["message"]
    assert client.get("/api/candles?symbol=BTC-PERP").status_code == 401


def test_markers_and_price_lines_follow_a_trade(client: FlaskClient) -> None:
    engine = engine_of(client)
    empty = client.get("/api/chart/overlays?symbol=BTC-PERP&timeframe=5m", headers=AUTH).get_json()
    assert empty["markers"] == [] and empty["price_lines"] == []
    add_signal(client, "chart-open")
    engine.process_pending_signals()
    opened = client.get("/api/chart/overlays?symbol=BTC-PERP&timeframe=5m", headers=AUTH).get_json()
    (entry,) = opened["markers"]
    assert entry["kind"] == "entry" and entry["side"] == "BUY" and entry["time"] % 300 == 0
    assert entry["at"] - entry["time"] < 300
    db: Database = client.application.extensions["db"]
    with db.session() as session:
        working = {
            r.client_id: r.trigger_price if r.trigger_price is not None else r.limit_price
            for r in session.query(OrderRow).filter(OrderRow.role.in_(("stop_loss", "partial_take_profit")))
        }
    lines = {line["kind"]: line for line in opened["price_lines"]}
    assert set(lines) == {"entry", "stop", "target"}
    assert lines["stop"]["price"] == working[lines["stop"]["client_id"]]
    assert lines["target"]["price"] == working[lines["target"]["client_id"]]
    assert lines["stop"]["price"] < lines["entry"]["price"] == entry["price"] < lines["target"]["price"]

    add_signal(client, "chart-close", "close")
    engine.process_pending_signals()
    closed = client.get("/api/chart/overlays?symbol=BTC-PERP", headers=AUTH).get_json()
    assert [m["kind"] for m in closed["markers"]] == ["entry", "exit"]
    assert closed["markers"][1]["side"] == "SELL" and closed["price_lines"] == []


def test_equity_steps_by_each_closed_trade(client: FlaskClient) -> None:
    engine = engine_of(client)
    before = client.get("/api/equity", headers=AUTH).get_json()
    assert before["points"] == [] and before["starting_equity"] == 10_000.0
    assert before["current"]["equity"] == engine.exchange.account().equity
    add_signal(client, "equity-open")
    engine.process_pending_signals()
    add_signal(client, "equity-close", "close")
    engine.process_pending_signals()
    trade = client.get("/api/trades", headers=AUTH).get_json()["trades"][0]
    after = client.get("/api/equity", headers=AUTH).get_json()
    end = after["points"][-1]  # (opened and closed at the same market minute: no separate starting point)
    assert math.isclose(end["equity"], 10_000.0 + trade["pnl"])
    assert math.isclose(end["drawdown"], min(0.0, end["equity"] / 10_000.0 - 1))


def test_market_state_keeps_each_candles_indicators() -> None:
    state = MarketState("BTC-PERP", "replay")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    seen = []
    for i in range(30):
        price = 100.0 + i
        state.add_candle(
            Candle("BTC-PERP", start + timedelta(minutes=i), price, price + 1, price - 1, price, 10.0)
        )
        seen.append(state.indicators("1m"))
    recent = state.recent("1m", 5)
    assert [c.close for c, _ in recent] == [125.0, 126.0, 127.0, 128.0, 129.0]
    assert [values["ema_20"] for _, values in recent] == [v["ema_20"] for v in seen[-5:]]
    assert [c.open_time for c, _ in state.recent("5m")] == [
        start + timedelta(minutes=5 * i) for i in range(6)
    ]
    assert state.recent("1m", 0) == [] and state.recent("3m") == []
