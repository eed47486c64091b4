"""How an alert's words and times read, wherever alerts come from: TradingView through the webhook, or a
file of historical alerts replayed into a backtest."""

from __future__ import annotations

import math
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
