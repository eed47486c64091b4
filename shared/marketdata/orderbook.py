"""Order book analytics: mid, spread, depth, imbalance, and what a market order of a given size costs.

Prices in quote currency, sizes in base units. ``OrderBook`` validates itself (sorted sides, positive
sizes, not crossed) so every metric can trust its input.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared.errors import InvalidInput
from shared.models import Side

Level = tuple[float, float]  # (price, size)
DEPTH_BANDS = (0.001, 0.005, 0.01)


class BookError(InvalidInput):
    """The book is unusable (empty side, crossed, unsorted, non-positive values)."""

    FIELD = "book"


@dataclass(frozen=True)
class Fill:
    requested: float
    filled: float
    average_price: float | None
    slippage_bps: float | None  # vs the mid, always >= 0 for a marketable order
    levels_used: int

    @property
    def complete(self) -> bool:
        return self.filled >= self.requested - 1e-12


def walk(levels: tuple[Level, ...], quantity: float, reference: float, side: Side) -> Fill:
    """Take ``quantity`` from ``levels`` (best first); slippage is measured against ``reference``."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    remaining, cost, used = quantity, 0.0, 0
    for price, size in levels:
        if remaining <= 0:
            break
        take = min(size, remaining)
        cost += take * price
        remaining -= take
        used += 1
    filled = quantity - max(remaining, 0.0)
    if filled <= 0:
        return Fill(quantity, 0.0, None, None, 0)
    average = cost / filled
    return Fill(quantity, filled, average, (average - reference) / reference * 10_000 * side.sign, used)


@dataclass(frozen=True)
class OrderBook:
    symbol: str
    time: datetime
    bids: tuple[Level, ...]  # best (highest) first
    asks: tuple[Level, ...]  # best (lowest) first

    def __post_init__(self) -> None:
        if not self.bids or not self.asks:
            raise BookError("both sides need at least one level")
        for name, levels, descending in (("bids", self.bids, True), ("asks", self.asks, False)):
            prices = [p for p, _ in levels]
            if any(p <= 0 or s <= 0 for p, s in levels):
                raise BookError(f"{name}: prices and sizes must be positive")
            if prices != sorted(prices, reverse=descending) or len(set(prices)) != len(prices):
                raise BookError(f"{name}: levels must be strictly sorted from the best price")
        if self.bids[0][0] >= self.asks[0][0]:
            raise BookError(f"crossed book: best bid {self.bids[0][0]} >= best ask {self.asks[0][0]}")

    @property
    def mid(self) -> float:
        return (self.bids[0][0] + self.asks[0][0]) / 2

    @property
    def spread_bps(self) -> float:
        return (self.asks[0][0] - self.bids[0][0]) / self.mid * 10_000

    def depth(self, band: float) -> tuple[float, float]:
        """(bid size, ask size) within ``band`` (0.005 = 0.5 %) of the mid."""
        low, high = self.mid * (1 - band), self.mid * (1 + band)
        return (
            sum(s for p, s in self.bids if p >= low),
            sum(s for p, s in self.asks if p <= high),
        )

    def imbalance(self, band: float = 0.005) -> float:
        """(bids - asks) / (bids + asks) within the band: +1 all bids, -1 all asks."""
        bid, ask = self.depth(band)
        return (bid - ask) / (bid + ask) if bid + ask else 0.0

    def market_fill(self, side: Side, quantity: float) -> Fill:
        """Walk the opposite side: the average price of a market order of ``quantity``, and its slippage."""
        return walk(self.asks if side is Side.BUY else self.bids, quantity, self.mid, side)

    def metrics(self) -> dict[str, float]:
        values = {"mid": self.mid, "spread_bps": self.spread_bps, "imbalance": self.imbalance()}
        for band in DEPTH_BANDS:
            bid, ask = self.depth(band)
            values[f"bid_depth_{band:.1%}"], values[f"ask_depth_{band:.1%}"] = bid, ask
        return values


def load_tardis_snapshots(path: Path, symbol: str) -> list[OrderBook]:
    """Tardis ``book_snapshot_N`` CSV (timestamps in microseconds)."""
    books = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            levels = {"asks": [], "bids": []}  # type: dict[str, list[Level]]
            for side in levels:
                index = 0
                while f"{side}[{index}].price" in row:
                    price, amount = row[f"{side}[{index}].price"], row[f"{side}[{index}].amount"]
                    if price and amount:
                        levels[side].append((float(price), float(amount)))
                    index += 1
            time = datetime.fromtimestamp(int(row["timestamp"]) / 1e6, UTC)
            books.append(OrderBook(symbol, time, tuple(levels["bids"]), tuple(levels["asks"])))
    return books


def load_depth_snapshot(path: Path) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
    """Binance-style depth snapshot (one row per level: ``side`` b/a, ``price``, ``qty``) as
    (bids best first, asks best first); a snapshot may hold one side only."""
    bids: list[Level] = []
    asks: list[Level] = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["side"] not in ("a", "b"):
                raise BookError(f"{path}: side must be a or b, got {row['side']!r}")
            (bids if row["side"] == "b" else asks).append((float(row["price"]), float(row["qty"])))
    if not bids and not asks:
        raise BookError(f"{path}: no levels")
    return tuple(sorted(bids, reverse=True)), tuple(sorted(asks))
