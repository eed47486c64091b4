"""Market specs (from shared/exchange/markets.json) and the candle series each market's price follows.

Every amount is an integer in e9 fixed point (as Bluefin sends them), so nothing is lost to floats.
The 1-minute candles are real (../shared/data/btc-perp-2022-01_1m.csv); markets other than BTC-PERP
replay the same series scaled (ETH-PERP by 1/20) and rounded to their tick. The file's ``volume`` column
is read as quote volume (USD); base volume is quote volume / close.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MARKETS_FILE = ROOT / "shared" / "exchange" / "markets.json"
CANDLES_FILE = ROOT.parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"
E9 = 10**9
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
SCALES = {
    "BTC-PERP": Decimal(1),
    "ETH-PERP": Decimal(1) / 20,
    "SOL-PERP": Decimal(1) / 400,
    "SUI-PERP": Decimal(1) / 20_000,
}
ASSET_NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "SOL": "Solana", "SUI": "Sui"}
DEFAULT_MAX_FUNDING_RATE_E9 = 1_000_000  # 0.1 % an hour: markets.json leaves the cap unknown


def e9(value: str | float | Decimal) -> int:
    """The e9 integer of a decimal (exact for strings and Decimals)."""
    return int((Decimal(str(value)) * E9).to_integral_value())


def from_e9(value: int) -> float:
    return value / E9


def notional(price: int, quantity: int) -> int:
    return price * quantity // E9


def mul(amount: int, ratio: int) -> int:
    """``amount`` x ``ratio`` (both e9)."""
    return amount * ratio // E9


def div(amount: int, ratio: int) -> int:
    """``amount`` / ``ratio`` (both e9)."""
    return amount * E9 // ratio


@dataclass(frozen=True)
class Spec:
    symbol: str
    tick: int
    step: int
    min_quantity: int
    max_market_quantity: int
    max_limit_quantity: int
    min_price: int
    max_price: int
    imr: int
    mmr: int
    default_leverage: int
    maker_fee: int
    taker_fee: int
    max_funding_rate: int
    isolated_only: bool
    status: str

    @property
    def max_leverage(self) -> int:
        """Whole-number leverage the IMR allows (e9): IMR 4.5 % -> 22x."""
        return max(1, E9 // self.imr) * E9

    @property
    def base_asset(self) -> str:
        return self.symbol.split("-")[0]

    def round_to_tick(self, price: int) -> int:
        return max(self.tick, (price + self.tick // 2) // self.tick * self.tick)


@cache
def load_specs() -> dict[str, Spec]:
    raw = json.loads(MARKETS_FILE.read_text())
    specs = {}
    for m in raw["markets"]:
        cap = m.get("max_funding_rate")
        specs[m["symbol"]] = Spec(
            symbol=m["symbol"],
            tick=e9(m["tick_size"]),
            step=e9(m["step_size"]),
            min_quantity=e9(m["min_quantity"]),
            max_market_quantity=e9(m["max_market_quantity"]),
            max_limit_quantity=e9(m["max_limit_quantity"]),
            min_price=e9(m["min_price"]),
            max_price=e9(m["max_price"]),
            imr=e9(m["initial_margin_ratio"]),
            mmr=e9(m["maintenance_margin_ratio"]),
            default_leverage=e9(m["default_leverage"]),
            maker_fee=e9(m["maker_fee"]),
            taker_fee=e9(m["taker_fee"]),
            max_funding_rate=e9(cap) if cap is not None else DEFAULT_MAX_FUNDING_RATE_E9,
            isolated_only=bool(m.get("isolated_only", False)),
            status=m.get("status", "ACTIVE"),
        )
    return specs


@dataclass(frozen=True)
class Candle:
    """One-minute candle: open time (ms, file time) and e9 prices; volumes in e9 base and quote units."""

    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int

    def with_price(self, price: int) -> Candle:
        """The candle after the price moved to ``price`` within it."""
        return Candle(
            self.start,
            self.open,
            max(self.high, price),
            min(self.low, price),
            price,
            self.volume,
            self.quote_volume,
            self.trades,
        )


def _e9_text(text: str) -> int:
    """The e9 integer of a plain decimal string (fast path for the candle file)."""
    whole, _, fraction = text.partition(".")
    return int(whole) * E9 + int((fraction + "000000000")[:9]) if not whole.startswith("-") else e9(text)


@cache
def _raw_rows() -> tuple[tuple[int, int, int, int, int, int], ...]:
    """(open time ms, open, high, low, close, quote volume) of every file row, amounts in e9."""
    rows = []
    with CANDLES_FILE.open(newline="") as handle:
        for row in csv.DictReader(handle):
            start = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC)
            o, h, low, c, v = (_e9_text(row[k]) for k in ("open", "high", "low", "close", "volume"))
            rows.append((int(start.timestamp() * 1000), o, h, low, c, v))
    return tuple(rows)


@cache
def load_candles(symbol: str) -> tuple[Candle, ...]:
    spec = load_specs()[symbol]
    scale = SCALES.get(symbol)
    if scale is None:
        raise ValueError(f"no candle series for {symbol}")
    numerator, denominator = scale.as_integer_ratio()
    candles = []
    for start, *prices, quote in _raw_rows():
        o, h, low, c = (spec.round_to_tick(p * numerator // denominator) for p in prices)
        base = quote * E9 // prices[3]
        candles.append(Candle(start, o, h, low, c, base, notional(c, base), max(1, base * 10 // E9)))
    return tuple(candles)


def funding_rate_e9(symbol: str, hour_ms: int) -> int:
    """The market's deterministic hourly funding rate: 0 to 0.01 %, varying per hour and market."""
    hour = hour_ms // HOUR_MS
    salt = sum(symbol.encode())
    return ((hour * 7919 + salt * 104729) % 101) * 1_000


INTERVALS_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": 24 * HOUR_MS,
    "1w": 7 * 24 * HOUR_MS,
}
WEEK_OFFSET_MS = 4 * 24 * HOUR_MS  # 1970-01-01 was a Thursday: weeks start on Mondays


def bucket_start(interval: str, ms: int) -> int:
    """Open time of the ``interval`` candle holding ``ms`` (UTC; weeks from Monday; months by calendar)."""
    if interval == "1Mo":
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp() * 1000)
    size = INTERVALS_MS[interval]
    offset = WEEK_OFFSET_MS if interval == "1w" else 0
    return (ms + offset) // size * size - offset


def bucket_end(interval: str, start: int) -> int:
    """Close time (inclusive, ms) of the ``interval`` candle opening at ``start``."""
    if interval == "1Mo":
        moment = datetime.fromtimestamp(start / 1000, UTC)
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000) - 1
    return start + INTERVALS_MS[interval] - 1


def aggregate(candles: list[Candle]) -> Candle:
    """One candle of consecutive ``candles`` (its start is the first one's)."""
    return Candle(
        candles[0].start,
        candles[0].open,
        max(c.high for c in candles),
        min(c.low for c in candles),
        candles[-1].close,
        sum(c.volume for c in candles),
        sum(c.quote_volume for c in candles),
        sum(c.trades for c in candles),
    )
