from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import InvalidInput
from shared.models import SignalAction
from webhook.alerts import AuthError, parse_alert

PASS = "correct-horse-battery"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def parse(alert: dict[str, Any] | bytes, **kw: Any) -> Any:
    body = alert if isinstance(alert, bytes) else json.dumps({"passphrase": PASS, **alert}).encode()
    return parse_alert(body, passphrase=PASS, max_age_s=kw.get("max_age_s", 300), now=NOW)


def problems(alert: dict[str, Any] | bytes) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse(alert)
    return {p.field: p.message for p in caught.value.problems}


@pytest.mark.parametrize(
    "symbol", ["BTC-PERP", "BTCUSDT", "BTCUSDT.P", "BINANCE:BTCUSDT.P", "btc-perp", "BTCUSD"]
)
def test_tradingview_symbols_become_bluefin_names(symbol: str) -> None:
    assert parse({"symbol": symbol, "action": "buy"}).symbol == "BTC-PERP"


@pytest.mark.parametrize(
    ("action", "expected"),
    [("buy", SignalAction.BUY), ("LONG", SignalAction.BUY), ("sell", SignalAction.SELL), ("short", SignalAction.SELL),
     ("close", SignalAction.CLOSE), ("Exit", SignalAction.CLOSE)],
)  # fmt: skip
def test_actions(action: str, expected: SignalAction) -> None:
    assert parse({"symbol": "BTC-PERP", "action": action}).action is expected


def test_full_alert_is_normalised_and_passphrase_is_not_kept() -> None:
    signal = parse(
        {"id": 42, "symbol": "BTCUSDT.P", "action": "buy", "price": "41000.5", "timeframe": "5",
         "strategy": "ema-cross", "confidence": 0.8, "stop_loss": 40000, "take_profit": 43000,
         "time": "2026-11-24T11:59:00Z", "extra": "kept"}
    )  # fmt: skip
    assert signal.price == 41000.5 and signal.stop_loss == 40000 and signal.take_profit == 43000
    assert signal.idempotency_key == "tv:42" and signal.source == "tradingview:ema-cross"
    assert signal.alert_time == datetime(2026, 11, 24, 11, 59, tzinfo=UTC)
    assert "passphrase" not in signal.raw and signal.raw["extra"] == "kept"


def test_wrong_or_missing_passphrase_is_an_auth_error_even_for_bad_fields() -> None:
    with pytest.raises(AuthError):
        parse_alert(b'{"passphrase": "nope", "action": "dance"}', passphrase=PASS, max_age_s=300, now=NOW)
    with pytest.raises(AuthError):
        parse_alert(b'{"symbol": "BTC-PERP", "action": "buy"}', passphrase=PASS, max_age_s=300, now=NOW)


def test_malformed_bodies_name_the_body() -> None:
    assert "body" in problems(b"not json")
    assert "body" in problems(b"[1, 2]")
    assert "body" in problems(b"\xff\xfe")


def test_each_bad_field_is_named() -> None:
    found = problems({"symbol": "???", "action": "dance", "price": -1, "confidence": 2, "timeframe": ["x"]})
    assert set(found) == {"symbol", "action", "price", "confidence", "timeframe"}


@pytest.mark.parametrize("price", ["NaN", "Infinity", -5, 0, True, "abc"])
def test_price_must_be_finite_and_positive(price: Any) -> None:
    literal = price if price in ("NaN", "Infinity") else json.dumps(price)
    body = f'{{"passphrase": "{PASS}", "symbol": "BTC-PERP", "action": "buy", "price": {literal}}}'
    assert "price" in problems(body.encode())


def test_nan_anywhere_is_named_and_never_stored() -> None:
    body = f'{{"passphrase": "{PASS}", "symbol": "BTC-PERP", "action": "buy", "extra": [1, NaN]}}'
    assert problems(body.encode()) == {"extra": "must not contain NaN or Infinity"}


def test_stops_on_the_wrong_side_are_rejected() -> None:
    assert "stop_loss" in problems({"symbol": "BTC-PERP", "action": "buy", "price": 100, "stop_loss": 101})
    assert "take_profit" in problems(
        {"symbol": "BTC-PERP", "action": "sell", "price": 100, "take_profit": 101}
    )
    assert "stop_loss" in problems(
        {"symbol": "BTC-PERP", "action": "sell", "stop_loss": 90, "take_profit": 95}
    )
    ok = parse({"symbol": "BTC-PERP", "action": "sell", "price": 100, "stop_loss": 105, "take_profit": 90})
    assert ok.stop_loss == 105


def test_stale_and_future_alerts_are_rejected() -> None:
    stale = problems(
        {"symbol": "BTC-PERP", "action": "buy", "time": (NOW - timedelta(seconds=301)).isoformat()}
    )
    assert "stale" in stale["time"]
    assert (
        "future"
        in problems(
            {"symbol": "BTC-PERP", "action": "buy", "time": (NOW + timedelta(minutes=5)).isoformat()}
        )["time"]
    )
    epoch_ms = int((NOW - timedelta(seconds=10)).timestamp() * 1000)
    assert parse({"symbol": "BTC-PERP", "action": "buy", "time": epoch_ms}).alert_time == NOW - timedelta(
        seconds=10
    )


def test_without_id_the_key_hashes_the_content_in_any_key_order() -> None:
    first = parse_alert(
        b'{"passphrase": "correct-horse-battery", "symbol": "BTC-PERP", "action": "buy", "price": 1}',
        passphrase=PASS, max_age_s=300, now=NOW,
    )  # fmt: skip
    second = parse_alert(
        b'{"price": 1, "action": "buy", "symbol": "BTC-PERP", "passphrase": "correct-horse-battery"}',
        passphrase=PASS, max_age_s=300, now=NOW,
    )  # fmt: skip
    other = parse({"symbol": "BTC-PERP", "action": "buy", "price": 2})
    assert first.idempotency_key == second.idempotency_key != other.idempotency_key
    assert first.idempotency_key.startswith("body:")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=6,
)
relaxed = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


@relaxed
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_validation_errors(body: bytes) -> None:
    try:
        parse_alert(body, passphrase=PASS, max_age_s=300, now=NOW)
    except (InvalidInput, AuthError):
        pass


@relaxed
@given(
    st.fixed_dictionaries(
        {"passphrase": st.just(PASS)},
        optional={
            "id": json_values, "symbol": st.one_of(st.sampled_from(["BTCUSDT.P", "ETH-PERP"]), json_values),
            "action": st.one_of(st.sampled_from(["buy", "sell", "close"]), json_values),
            "price": json_values, "stop_loss": json_values, "take_profit": json_values, "confidence": json_values,
            "time": json_values, "timeframe": json_values, "strategy": json_values,
        },
    )
)  # fmt: skip
def test_near_valid_alerts_raise_only_validation_errors(alert: dict[str, Any]) -> None:
    try:
        signal = parse_alert(json.dumps(alert).encode(), passphrase=PASS, max_age_s=300, now=NOW)
    except InvalidInput as exc:
        assert exc.problems and all(p.field and p.message for p in exc.problems)
    else:
        assert signal.symbol.endswith("-PERP") and signal.action in SignalAction
