"""Market specifications as Bluefin Pro publishes them in ``/v1/exchange/info``: tick and step size, minimum
and maximum quantity and price, margin ratios (IMR gives the maximum leverage), default fees, funding cap.

Sizing rounds to each market's step, and every order is checked against its market before it is signed or
simulated (``MarketSpec.problems``). Three places a spec can come from, best first: Bluefin itself (live
trading reads ``/v1/exchange/info`` at start); ``DATA_DIR/bluefin-markets.json``, written by ``bluefinai
markets refresh`` when Bluefin answers; the defaults this project ships (``markets.json`` beside this file,
labelled with their source). A market none of them lists gets ``generic_spec`` (0.001 steps), labelled so.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from shared.models import OrderRequest, OrderType, Side

DEFAULTS_FILE = Path(__file__).with_name("markets.json")
REFRESHED_FILE_NAME = "bluefin-markets.json"


E9 = 10**9


def _e9(value: Any) -> Decimal:
    return Decimal(int(value)) / E9


@dataclass(frozen=True)
class MarketSpec:
    symbol: str
    tick_size: Decimal
    step_size: Decimal
    min_quantity: Decimal
    max_market_quantity: Decimal
    max_limit_quantity: Decimal
    min_price: Decimal
    max_price: Decimal
    initial_margin_ratio: float
    maintenance_margin_ratio: float
    default_leverage: float
    maker_fee: float
    taker_fee: float
    max_funding_rate: float | None = None
    status: str = "ACTIVE"
    isolated_only: bool = False
    source: str = "defaults"

    @property
    def max_leverage(self) -> float:
        """The highest leverage the initial margin ratio allows (IMR 4.5 % -> 22, whole numbers only)."""
        return float(max(1, math.floor(1 / self.initial_margin_ratio + 1e-9)))

    @property
    def trading(self) -> bool:
        return self.status in ("ACTIVE", "BETA")

    # --- rounding -------------------------------------------------------------------------------------------
    def round_price(self, price: float, side: Side | None = None, passive: bool = False) -> float:
        """To the market's tick: nearest, or (``passive``) away from the market: a buy down, a sell up."""
        ticks = Decimal(repr(price)) / self.tick_size
        if passive and side is not None:
            mode = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        else:
            mode = ROUND_HALF_EVEN
        return float(ticks.to_integral_value(mode) * self.tick_size)

    def on_step(self, quantity: float) -> bool:
        return (Decimal(repr(quantity)) % self.step_size) == 0

    def on_tick(self, price: float) -> bool:
        return (Decimal(repr(price)) % self.tick_size) == 0

    # --- validation -----------------------------------------------------------------------------------------
    def problems(self, request: OrderRequest) -> list[str]:
        """What in ``request`` this market would refuse (empty: nothing)."""
        found: list[str] = []
        if not self.trading:
            found.append(f"{self.symbol} is {self.status}, not trading")
        quantity = Decimal(repr(request.quantity))
        if not self.on_step(request.quantity):
            found.append(f"quantity {request.quantity} is not a multiple of the step {self.step_size}")
        if quantity < self.min_quantity:
            found.append(f"quantity {request.quantity} is below the minimum {self.min_quantity}")
        resting = request.order_type is not OrderType.MARKET
        largest = self.max_limit_quantity if resting else self.max_market_quantity
        if quantity > largest:
            kind = "limit" if resting else "market"
            found.append(f"quantity {request.quantity} is above the {kind}-order maximum {largest}")
        for name, price in (("price", request.price), ("trigger_price", request.trigger_price)):
            if price is None:
                continue
            if not self.on_tick(price):
                found.append(f"{name} {price} is not a multiple of the tick {self.tick_size}")
            if not (self.min_price <= Decimal(repr(price)) <= self.max_price):
                found.append(f"{name} {price} is outside {self.min_price}..{self.max_price}")
        if request.leverage > self.max_leverage:
            found.append(f"leverage {request.leverage:g} is above the market maximum {self.max_leverage:g}")
        return found

    # --- (de)serialisation ----------------------------------------------------------------------------------
    @classmethod
    def from_exchange_info(cls, market: dict[str, Any], source: str = "bluefin") -> MarketSpec:
        """One entry of ``/v1/exchange/info``'s ``markets`` (e9 strings)."""
        funding_cap = market.get("maxFundingRateE9")
        return cls(
            symbol=str(market["symbol"]), status=str(market.get("status", "ACTIVE")),
            tick_size=_e9(market["tickSizeE9"]), step_size=_e9(market["stepSizeE9"]),
            min_quantity=_e9(market["minOrderQuantityE9"]),
            max_market_quantity=_e9(market["maxMarketOrderQuantityE9"]),
            max_limit_quantity=_e9(market["maxLimitOrderQuantityE9"]),
            min_price=_e9(market["minOrderPriceE9"]), max_price=_e9(market["maxOrderPriceE9"]),
            initial_margin_ratio=float(_e9(market["initialMarginRatioE9"])),
            maintenance_margin_ratio=float(_e9(market["maintenanceMarginRatioE9"])),
            default_leverage=float(_e9(market["defaultLeverageE9"])),
            maker_fee=float(_e9(market["defaultMakerFeeE9"])),
            taker_fee=float(_e9(market["defaultTakerFeeE9"])),
            max_funding_rate=float(_e9(funding_cap)) if funding_cap not in (None, "") else None,
            isolated_only=bool(market.get("isolatedOnly", False)), source=source,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("source")
        return {k: str(v) if isinstance(v, Decimal | float) else v for k, v in values.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str) -> MarketSpec:
        decimals = {"tick_size", "step_size", "min_quantity", "max_market_quantity", "max_limit_quantity",
                    "min_price", "max_price"}  # fmt: skip
        floats = {
            "initial_margin_ratio",
            "maintenance_margin_ratio",
            "default_leverage",
            "maker_fee",
            "taker_fee",
        }
        parsed: dict[str, Any] = {"source": source}
        for key, value in values.items():
            if key in decimals:
                parsed[key] = Decimal(str(value))
            elif key in floats or (key == "max_funding_rate" and value is not None):
                parsed[key] = float(value)
            else:
                parsed[key] = value
        return cls(**parsed)


def generic_spec(symbol: str) -> MarketSpec:
    """For a market no spec lists (paper trading and backtests only): 0.001 steps, 0.01 ticks, 20x."""
    return MarketSpec(
        symbol=symbol, tick_size=Decimal("0.01"), step_size=Decimal("0.001"), min_quantity=Decimal("0.001"),
        max_market_quantity=Decimal("1000000"), max_limit_quantity=Decimal("1000000"),
        min_price=Decimal("0.0001"), max_price=Decimal("100000000"), initial_margin_ratio=0.05,
        maintenance_margin_ratio=0.03, default_leverage=3.0, maker_fee=0.0002, taker_fee=0.0005,
        source="generic (no spec lists this market)",
    )  # fmt: skip


@dataclass(frozen=True)
class MarketSpecs:
    """Every market's spec and where they came from."""

    markets: dict[str, MarketSpec]
    source: str
    fetched_at: str | None = None

    def get(self, symbol: str) -> MarketSpec:
        return self.markets.get(symbol) or generic_spec(symbol)

    def listed(self, symbol: str) -> bool:
        return symbol in self.markets

    @classmethod
    def from_exchange_info(cls, answer: dict[str, Any], network: str) -> MarketSpecs:
        at = datetime.now(UTC).isoformat(timespec="seconds")
        source = f"Bluefin Pro /v1/exchange/info ({network}, {at})"
        markets = {
            str(m["symbol"]): MarketSpec.from_exchange_info(m, source) for m in answer.get("markets", [])
        }
        return cls(markets, source, at)

    def write(self, path: Path, network: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "source": self.source, "fetched_at": self.fetched_at, "network": network,
            "markets": [spec.to_dict() for spec in self.markets.values()],
        }  # fmt: skip
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document, indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> MarketSpecs:
        document = json.loads(path.read_text())
        source = str(document.get("source", path.name))
        markets = {str(m["symbol"]): MarketSpec.from_dict(m, source) for m in document.get("markets", [])}
        return cls(markets, source, document.get("fetched_at"))


def load_market_specs(data_dir: Path | None = None) -> MarketSpecs:
    """The refreshed file in ``data_dir`` when there is one, else the shipped defaults."""
    if data_dir is not None and (data_dir / REFRESHED_FILE_NAME).exists():
        return MarketSpecs.read(data_dir / REFRESHED_FILE_NAME)
    return MarketSpecs.read(DEFAULTS_FILE)
