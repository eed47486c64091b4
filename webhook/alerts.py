"""TradingView alert parsing: bytes in, a validated ``Signal`` out, or a clear refusal.

TradingView posts ``application/json`` when the alert message is valid JSON and ``text/plain`` otherwise,
so the body is parsed as JSON whatever the content type. ``parse_alert`` raises only ``AuthError``
(missing or wrong passphrase, checked before any other field so nothing leaks to a stranger) or
``InvalidInput`` (one ``FieldProblem`` per problem).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Collection
from datetime import datetime
from typing import Any

from shared.alert_fields import (
    ACTIONS,
    POSITIONS,
    parse_action,
    parse_position,
    parse_time,
    position_intent,
    source_name,
)
from shared.errors import FieldProblem, InvalidInput, Rejected
from shared.models import Signal, SignalAction
from shared.symbols import UnknownSymbol, normalise_symbol

PRICE_FIELDS = ("price", "stop_loss", "take_profit")
POSITION_FIELDS = ("market_position", "prev_market_position")  # TradingView's strategy position
QUANTITY_FIELDS = ("quantity", "contracts")  # the strategy's order size: recorded (risk sizes ours)
TEXT_FIELDS = {"timeframe": 10, "strategy": 120}  # the columns' lengths (shared/db.py SignalRow)
MAX_ID_LENGTH = 128
MAX_NUMBER_TEXT = 40
MAX_ECHO = 40  # characters of a refused value repeated in an answer
MAX_FUTURE_SKEW_S = 60


class AuthError(Rejected):
    """Missing or wrong passphrase."""


MAX_DEPTH = 16  # an alert is flat; a few levels of nesting are allowed in extra fields, no more


def _decode(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, parsed once and nothing more: the passphrase is checked before any walk
    over the values (a stranger's body costs one parse)."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_float)
    except UnicodeDecodeError:
        raise InvalidInput([FieldProblem("body", "must be UTF-8 text")]) from None
    except (ValueError, RecursionError):  # also a number of more than 4,300 digits
        raise InvalidInput([FieldProblem("body", "must be a JSON object")]) from None
    if not isinstance(data, dict):
        raise InvalidInput([FieldProblem("body", "must be a JSON object")])
    return data


def _check_values(data: dict[str, Any]) -> None:
    """After the passphrase: nesting depth, NUL characters and lone surrogates anywhere in the body, by an
    explicit walk (no recursion for a hostile body to exhaust)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput([FieldProblem("body", f"must not nest deeper than {MAX_DEPTH} levels")])
        if isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            if "\x00" in value:
                raise InvalidInput([FieldProblem("body", "must not contain NUL characters")])
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInput(
                    [FieldProblem("body", "contains invalid Unicode (lone surrogates)")]
                ) from None


class NonFinite:
    """Stands for a NaN or Infinity literal, or a number too large for a float (``1e400``), in the body,
    so the field holding it can be named."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _reject_constant(name: str) -> NonFinite:
    return NonFinite(name)


def _float(text: str) -> float | NonFinite:
    number = float(text)
    return number if math.isfinite(number) else NonFinite(text[:20])


def _contains_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, NonFinite):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def check_passphrase(data: dict[str, Any], expected: str) -> None:
    given = data.get("passphrase")
    if not isinstance(given, str) or not expected:
        raise AuthError("missing passphrase")
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode()):
        raise AuthError("wrong passphrase")


def _positive_number(value: Any) -> float | None:
    """A finite positive number, or a numeric string (TradingView placeholders render as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_TEXT:
            return None
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int):
        try:
            value = float(value)  # a 309-digit integer does not fit a float
        except OverflowError:
            return None
    if isinstance(value, float) and math.isfinite(value) and value > 0:
        return value
    return None


def _idempotency_key(data: dict[str, Any], problems: list[FieldProblem]) -> str:
    raw_id = data.get("id")
    if raw_id is not None:
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int | float) or not str(raw_id).strip():
            problems.append(FieldProblem("id", "must be a non-empty string or number"))
        elif len(str(raw_id)) > MAX_ID_LENGTH:
            problems.append(FieldProblem("id", f"must be at most {MAX_ID_LENGTH} characters"))
        else:
            return f"tv:{str(raw_id).strip()}"
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "body:" + hashlib.sha256(canonical.encode()).hexdigest()


def _check_sides(
    action: SignalAction | None, prices: dict[str, float | None], problems: list[FieldProblem]
) -> None:
    if action not in (SignalAction.BUY, SignalAction.SELL):
        return
    price, stop, target = prices.get("price"), prices.get("stop_loss"), prices.get("take_profit")
    long = action is SignalAction.BUY
    word = "below" if long else "above"
    other = "above" if long else "below"
    if stop is not None and price is not None and (stop >= price if long else stop <= price):
        problems.append(FieldProblem("stop_loss", f"must be {word} price for a {action.value}"))
    if target is not None and price is not None and (target <= price if long else target >= price):
        problems.append(FieldProblem("take_profit", f"must be {other} price for a {action.value}"))
    if stop is not None and target is not None and (stop >= target if long else stop <= target):
        problems.append(FieldProblem("stop_loss", f"must be {word} take_profit for a {action.value}"))


def _positions(alert: dict[str, Any], problems: list[FieldProblem]) -> tuple[str | None, str | None]:
    """market_position and prev_market_position (long, short, flat), each None when absent; a
    prev_market_position alone says nothing."""
    found: list[str | None] = []
    for name in POSITION_FIELDS:
        value = alert.get(name)
        position = None if value is None else parse_position(value)
        if value is not None and position is None:
            problems.append(FieldProblem(name, f"must be one of {', '.join(POSITIONS)}"))
        found.append(position)
    return found[0], found[1]


def _check_order_fields(alert: dict[str, Any], problems: list[FieldProblem]) -> None:
    """quantity / contracts (the strategy's order size) and order_id ({{strategy.order.id}}), optional:
    recorded with the signal as sent."""
    for name in QUANTITY_FIELDS:
        if alert.get(name) is not None and _positive_number(alert[name]) is None:
            problems.append(FieldProblem(name, "must be a finite number greater than 0"))
    order_id = alert.get("order_id")
    text = isinstance(order_id, str | int) and not isinstance(order_id, bool)
    if order_id is not None and (not text or len(str(order_id)) > MAX_ID_LENGTH):
        problems.append(FieldProblem("order_id", f"must be text of at most {MAX_ID_LENGTH} characters"))


def parse_alert(
    body: bytes, *, passphrase: str, max_age_s: int, now: datetime, symbols: Collection[str] | None = None
) -> Signal:
    """``symbols``: the markets traded (SYMBOLS); an alert for another is refused naming it."""
    data = _decode(body)
    check_passphrase(data, passphrase)
    _check_values(data)
    alert = {k: v for k, v in data.items() if k != "passphrase"}
    problems: list[FieldProblem] = []

    action = parse_action(alert.get("action"))
    if action is None:
        problems.append(FieldProblem("action", f"must be one of {', '.join(ACTIONS)}"))
    positions = _positions(alert, problems)
    intent = ""
    if action is not None:
        action, intent = position_intent(action, *positions)

    symbol = ""
    raw_symbol = alert.get("symbol")
    try:
        if isinstance(raw_symbol, str) and len(raw_symbol) > MAX_ECHO:
            raise UnknownSymbol(
                f"must be a perpetual symbol such as BTC-PERP (at most {MAX_ECHO} characters)"
            )
        symbol = normalise_symbol(raw_symbol)  # type: ignore[arg-type]
        if symbols is not None and symbol not in symbols:
            problems.append(
                FieldProblem("symbol", f"{symbol} is not traded here (SYMBOLS: {', '.join(symbols)})")
            )
    except UnknownSymbol as exc:
        problems.extend([FieldProblem("symbol", "is required")] if raw_symbol is None else exc.problems)

    prices: dict[str, float | None] = {}
    for name in PRICE_FIELDS:
        if alert.get(name) is None:
            prices[name] = None
            continue
        prices[name] = _positive_number(alert[name])
        if prices[name] is None:
            problems.append(FieldProblem(name, "must be a finite number greater than 0"))
    # a partial exit or an add keeps the position: its stop and target are the strategy's business
    _check_sides(action if intent in ("", "open", "reverse") else None, prices, problems)
    _check_order_fields(alert, problems)

    confidence = None
    if alert.get("confidence") is not None:
        value = alert["confidence"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            problems.append(FieldProblem("confidence", "must be a number from 0 to 1"))
        else:
            confidence = float(value)

    texts: dict[str, str | None] = {}
    for name, limit in TEXT_FIELDS.items():
        value = alert.get(name)
        if value is not None and (
            not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > limit
        ):
            problems.append(FieldProblem(name, f"must be text of at most {limit} characters"))
            value = None
        texts[name] = str(value) if value is not None else None

    alert_time = None
    if alert.get("time") is not None:
        alert_time = parse_time(alert["time"])
        if alert_time is None:
            problems.append(FieldProblem("time", "must be ISO 8601 or epoch seconds/milliseconds"))
        else:
            age = (now - alert_time).total_seconds()
            if age > max_age_s:
                problems.append(FieldProblem("time", f"stale: {age:.0f} s old (limit {max_age_s} s)"))
            elif age < -MAX_FUTURE_SKEW_S:
                problems.append(FieldProblem("time", f"{-age:.0f} s in the future"))

    named = {p.field for p in problems}
    for name, value in alert.items():
        if name not in named and _contains_non_finite(value):
            problems.append(FieldProblem(str(name), "must not contain NaN or Infinity"))
    if problems:
        raise InvalidInput(problems)
    key = _idempotency_key(alert, problems)
    if problems:
        raise InvalidInput(problems)
    assert action is not None
    source = source_name("tradingview", texts["strategy"])
    return Signal(
        idempotency_key=key, source=source, symbol=symbol, action=action, price=prices["price"],
        timeframe=texts["timeframe"], strategy=texts["strategy"], confidence=confidence,
        stop_loss=prices["stop_loss"], take_profit=prices["take_profit"], alert_time=alert_time, raw=alert,
    )  # fmt: skip
