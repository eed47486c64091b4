"""TradingView's strategy placeholders: market_position / prev_market_position decide open, close, reverse,
add or reduce; contracts and order_id are recorded; each strategy is a signal source of its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.alert_fields import (
    SOURCE_LENGTH,
    extra_fields,
    intent_of,
    parse_position,
    position_intent,
    source_name,
)
from shared.errors import InvalidInput
from shared.models import SignalAction
from webhook.alerts import parse_alert

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PASS = "test-passphrase-0123456789"


def parse(**fields: Any) -> Any:
    body = {"passphrase": PASS, "symbol": "BTCUSDT.P", **fields}
    return parse_alert(json.dumps(body).encode(), passphrase=PASS, max_age_s=300, now=NOW)


@pytest.mark.parametrize(
    ("action", "position", "before", "expected", "intent"),
    [
        ("sell", "flat", "long", SignalAction.CLOSE, "close"),  # a long-only strategy's exit: not a short
        ("buy", "flat", "short", SignalAction.CLOSE, "close"),
        ("buy", "long", "short", SignalAction.BUY, "reverse"),
        ("sell", "short", "long", SignalAction.SELL, "reverse"),
        ("buy", "long", "flat", SignalAction.BUY, "open"),
        ("buy", "long", None, SignalAction.BUY, "open"),
        ("buy", "long", "long", SignalAction.BUY, "add"),
        ("sell", "long", "long", SignalAction.BUY, "reduce"),  # a partial exit: still long
        ("buy", "short", "short", SignalAction.SELL, "reduce"),
        ("sell", None, None, SignalAction.SELL, ""),  # no position given: the action as it is
    ],
)
def test_market_position_decides_what_the_alert_does(
    action: str, position: str | None, before: str | None, expected: SignalAction, intent: str
) -> None:
    fields: dict[str, Any] = {"action": action}
    if position is not None:
        fields["market_position"] = position.upper() if position == "long" else position
    if before is not None:
        fields["prev_market_position"] = f" {before} "
    signal = parse(**fields)
    assert signal.action is expected
    assert intent_of(signal.raw) == intent


def test_contracts_order_id_and_unknown_fields_are_kept_and_shown() -> None:
    signal = parse(
        action="sell", market_position="flat", prev_market_position="long", contracts="0.5",
        order_id="Long Exit", comment={"note": "kept"}, strategy="Trend 4h",
    )  # fmt: skip
    assert signal.source == "tradingview:Trend 4h"
    assert extra_fields(signal.raw) == {
        "market_position": "flat", "prev_market_position": "long", "contracts": "0.5",
        "order_id": "Long Exit", "comment": {"note": "kept"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("market_position", "sideways"),
        ("prev_market_position", 1),
        ("contracts", 0),
        ("quantity", "-1"),
        ("contracts", "lots"),
        ("order_id", "x" * 129),
        ("order_id", True),
    ],
)
def test_bad_tradingview_fields_are_named(field: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(action="buy", **{field: value})
    assert [p.field for p in caught.value.problems] == [field]


def test_the_stop_of_a_partial_exit_is_not_checked_against_the_held_side() -> None:
    # a sell that reduces a long, with the sell's stop above the price: accepted, and kept as sent
    signal = parse(
        action="sell", market_position="long", prev_market_position="long", price=100, stop_loss=110
    )
    assert intent_of(signal.raw) == "reduce" and signal.stop_loss == 110
    with pytest.raises(InvalidInput):  # an opening sell still has its stop on the right side
        parse(action="sell", market_position="short", price=100, stop_loss=90)


def test_without_a_strategy_the_source_is_tradingview() -> None:
    assert parse(action="buy").source == "tradingview"
    assert parse(action="buy", strategy="  ").source == "tradingview"


@given(st.text(min_size=1, max_size=120), st.text(min_size=1, max_size=120))
def test_every_source_fits_its_column_and_two_strategies_never_share_one(a: str, b: str) -> None:
    name_a, name_b = source_name("tradingview", a), source_name("tradingview", b)
    assert len(name_a) <= SOURCE_LENGTH and len(name_b) <= SOURCE_LENGTH
    if a.strip() and b.strip() and a.strip() != b.strip():
        assert name_a != name_b
    if a.strip() and len(a.strip()) <= SOURCE_LENGTH - len("tradingview:"):
        assert name_a == f"tradingview:{a.strip()}"


ACTION = st.sampled_from(list(SignalAction))
POSITION = st.sampled_from(["long", "short", "flat"])


@given(ACTION, POSITION, st.none() | POSITION)
def test_the_signal_always_matches_the_strategy_position_after_the_order(
    action: SignalAction, position: str, before: str | None
) -> None:
    result, intent = position_intent(action, position, before)
    if position == "flat":
        assert (result, intent) == (SignalAction.CLOSE, "close")
    else:
        assert result is (SignalAction.BUY if position == "long" else SignalAction.SELL)
        assert intent in ("open", "reverse", "add", "reduce")
        assert (intent == "reduce") == (action is not result)
        assert intent != "add" or before == position
        assert intent != "reverse" or before not in (None, "flat", position)


@given(st.text(max_size=12))
def test_only_the_three_positions_are_read(text: str) -> None:
    parsed = parse_position(text)
    assert parsed is None or parsed == text.strip().lower() in ("long", "short", "flat")


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["buy", "sell", "close", "long", "short", "exit"]),
    JSON_VALUE | POSITION, JSON_VALUE | POSITION, JSON_VALUE, JSON_VALUE,
    JSON_VALUE, st.none() | st.text(max_size=130),
)  # fmt: skip
def test_any_tradingview_fields_give_a_signal_or_named_problems(
    action: str, position: Any, before: Any, contracts: Any, quantity: Any, order_id: Any, strategy: Any
) -> None:
    fields = {
        "action": action, "market_position": position, "prev_market_position": before, "contracts": contracts,
        "quantity": quantity, "order_id": order_id, "strategy": strategy,
    }  # fmt: skip
    try:
        signal = parse(**fields)
    except InvalidInput as exc:
        assert exc.problems and all(p.field in {*fields, "body"} for p in exc.problems)
        return
    assert len(signal.source) <= SOURCE_LENGTH
    known = parse_position(position) if position is not None else None
    if known == "flat":
        assert signal.action is SignalAction.CLOSE
    elif known is not None:
        assert signal.action is (SignalAction.BUY if known == "long" else SignalAction.SELL)
