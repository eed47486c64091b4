"""How an alert's words and times read, wherever alerts come from: TradingView through the webhook, or a
file of historical alerts replayed into a backtest."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.models import SignalAction

ACTIONS = {
    "buy": SignalAction.BUY,
    "long": SignalAction.BUY,
    "sell": SignalAction.SELL,
    "short": SignalAction.SELL,
    "close": SignalAction.CLOSE,
    "exit": SignalAction.CLOSE,
}


def parse_action(value: Any) -> SignalAction | None:
    """buy/long, sell/short, close/exit (any case, spaces around); None for anything else."""
    return ACTIONS.get(value.strip().lower()) if isinstance(value, str) else None


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (TradingView's {{timenow}}; no zone means UTC) or epoch seconds / milliseconds, as UTC; None
    when it is neither."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
            number = float(value)
            if not math.isfinite(number):
                return None
            seconds = number / 1000 if number > 1e11 else number
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


# TradingView's strategy placeholders: {{strategy.market_position}} and {{strategy.prev_market_position}}
# are the strategy's position after and before the order ({{strategy.order.action}} is only the order's side:
# a long-only strategy's exit is a "sell"), so they decide what an alert means here.
POSITIONS = ("long", "short", "flat")
# what an alert with market_position means (``position_intent``); "" without one: the action as it is
INTENTS = ("open", "reverse", "close", "add", "reduce")
# the alert fields that have a place of their own on a signal; every other field is kept in ``raw`` and shown
STANDARD_FIELDS = frozenset(
    {"passphrase", "id", "symbol", "action", "price", "timeframe", "strategy", "confidence", "stop_loss",
     "take_profit", "time", "source"}
)  # fmt: skip
SOURCE_LENGTH = 40  # shared/db.py SignalRow.source
_DIGEST = 8


def parse_position(value: Any) -> str | None:
    """long, short or flat (any case, spaces around); None for anything else."""
    if not isinstance(value, str):
        return None
    word = value.strip().lower()
    return word if word in POSITIONS else None


def position_intent(
    action: SignalAction, market_position: str | None, prev_market_position: str | None = None
) -> tuple[SignalAction, str]:
    """The signal an alert stands for, and what it does, from the order's ``action`` and the strategy's
    position after it (``market_position``) and before it (``prev_market_position``).

    - flat: close (whatever the order's side: a long-only strategy's "sell" closes the long);
    - long after a buy: open, reverse (from short) or add (already long: the position is kept, not grown,
      since risk sizes every position);
    - long after a sell or a close: reduce (a partial exit: the position is kept, nothing new opens);
    - short: the mirror image.
    Without ``market_position`` the action is taken as it is (intent "").
    """
    if market_position is None:
        return action, ""
    if market_position == "flat":
        return SignalAction.CLOSE, "close"
    target = SignalAction.BUY if market_position == "long" else SignalAction.SELL
    if action is not target:
        return target, "reduce"
    if prev_market_position == market_position:
        return target, "add"
    opposite = "short" if market_position == "long" else "long"
    return target, "reverse" if prev_market_position == opposite else "open"


def intent_of(raw: Mapping[str, Any]) -> str:
    """What a stored alert (its ``raw`` fields) does (``position_intent``); "" when it says no position."""
    action = parse_action(raw.get("action"))
    position = parse_position(raw.get("market_position"))
    if action is None or position is None:
        return ""
    return position_intent(action, position, parse_position(raw.get("prev_market_position")))[1]


def extra_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The alert's fields without a column of their own (market_position, contracts, order_id, anything the
    sender added), as sent."""
    return {str(k): v for k, v in raw.items() if k not in STANDARD_FIELDS}


def source_name(base: str, strategy: str | None) -> str:
    """``<base>:<strategy>`` (``base`` alone without a strategy): each strategy is a signal source of its
    own, for Kelly, the track record and performance. A strategy too long for the column (SOURCE_LENGTH)
    keeps its first characters and a hash of the whole name, so two long names never share a source."""
    name = (strategy or "").strip()
    if not name:
        return base
    room = SOURCE_LENGTH - len(base) - 1
    if len(name) > room:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]
        name = name[: room - _DIGEST - 1] + "~" + digest
    return f"{base}:{name}"
