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
from datetime import datetime
from typing import Any

from shared.alert_fields import ACTIONS, parse_action, parse_time
from shared.errors import FieldProblem, InvalidInput, Rejected
from shared.models import Signal, SignalAction
from shared.symbols import UnknownSymbol, normalise_symbol

PRICE_FIELDS = ("price", "stop_loss", "take_profit")
TEXT_FIELDS = {"timeframe": 16, "strategy": 120}
MAX_ID_LENGTH = 128
MAX_FUTURE_SKEW_S = 60


class AuthError(Rejected):
    """Missing or wrong passphrase."""


def _decode(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InvalidInput([FieldProblem("body", "must be UTF-8 text")]) from None
    except (ValueError, RecursionError):
        raise InvalidInput([FieldProblem("body", "must be a JSON object")]) from None
    if not isinstance(data, dict):
        raise InvalidInput([FieldProblem("body", "must be a JSON object")])
    try:
        text = json.dumps(data, ensure_ascii=False, default=lambda _: None)
        text.encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        raise InvalidInput([FieldProblem("body", "contains invalid Unicode (lone surrogates)")]) from None
    if _contains_nul(data):
        raise InvalidInput([FieldProblem("body", "must not contain NUL characters")])
    return data


class NonFinite:
    """Stands for a NaN or Infinity literal in the body, so the field holding it can be named."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _reject_constant(name: str) -> NonFinite:
    return NonFinite(name)


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def _contains_non_finite(value: Any) -> bool:
    if isinstance(value, NonFinite):
        return True
    if isinstance(value, dict):
        return any(_contains_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_non_finite(v) for v in value)
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
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
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


def parse_alert(body: bytes, *, passphrase: str, max_age_s: int, now: datetime) -> Signal:
    data = _decode(body)
    check_passphrase(data, passphrase)
    alert = {k: v for k, v in data.items() if k != "passphrase"}
    problems: list[FieldProblem] = []

    action = parse_action(alert.get("action"))
    if action is None:
        problems.append(FieldProblem("action", f"must be one of {', '.join(ACTIONS)}"))

    symbol = ""
    try:
        symbol = normalise_symbol(alert.get("symbol"))  # type: ignore[arg-type]
    except UnknownSymbol as exc:
        field_problem = "is required" if alert.get("symbol") is None else str(exc)
        problems.append(FieldProblem("symbol", field_problem))

    prices: dict[str, float | None] = {}
    for name in PRICE_FIELDS:
        if alert.get(name) is None:
            prices[name] = None
            continue
        prices[name] = _positive_number(alert[name])
        if prices[name] is None:
            problems.append(FieldProblem(name, "must be a finite number greater than 0"))
    _check_sides(action, prices, problems)

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
    return Signal(
        idempotency_key=key, source="tradingview", symbol=symbol, action=action, price=prices["price"],
        timeframe=texts["timeframe"], strategy=texts["strategy"], confidence=confidence,
        stop_loss=prices["stop_loss"], take_profit=prices["take_profit"], alert_time=alert_time, raw=alert,
    )  # fmt: skip
