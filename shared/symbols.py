"""Market symbol normalisation: TradingView tickers and Bluefin names both become ``BASE-PERP``."""

from __future__ import annotations

import re

from shared.errors import InvalidInput

_QUOTES = ("USDT", "USDC", "USD", "PERP")
_BLUEFIN = re.compile(r"^([A-Z0-9]{2,15})-PERP$")
_BASE = re.compile(r"^[A-Z0-9]{2,15}$")


class UnknownSymbol(InvalidInput):
    """The text is not a perpetual-futures symbol we can map to a Bluefin market."""

    FIELD = "symbol"


def normalise_symbol(raw: str) -> str:
    """Map ``BTC-PERP``, ``BTCUSDT``, ``BTCUSDT.P``, ``BINANCE:BTCUSDT.P``, ``btc-perp`` to ``BTC-PERP``.

    Raises ``UnknownSymbol`` when the text cannot be mapped.
    """
    if not isinstance(raw, str):
        raise UnknownSymbol("must be a string")
    text = raw.strip().upper()
    if ":" in text:
        text = text.rsplit(":", 1)[1]
    if text.endswith(".P"):
        text = text[:-2]
    match = _BLUEFIN.match(text)
    if match:
        return f"{match.group(1)}-PERP"
    text = text.replace("-", "").replace("_", "").replace("/", "")
    for quote in _QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            base = text[: -len(quote)]
            if base.endswith("PERP"):
                base = base[:-4]
            if _BASE.match(base):
                return f"{base}-PERP"
    raise UnknownSymbol(f"{raw!r} is not a perpetual symbol such as BTC-PERP or BTCUSDT.P")
