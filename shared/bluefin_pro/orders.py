"""Bluefin Pro orders, trades and accounts in our terms: building the signed request, reading the answers.

Pure functions (no I/O): ``shared.exchange.bluefin_pro`` does the talking.
- Our ``OrderType`` -> Bluefin's: MARKET, LIMIT, STOP_MARKET, STOP_LIMIT, TAKE_PROFIT (-> TAKE_PROFIT_MARKET),
  TAKE_PROFIT_LIMIT. Market and stop-market orders are signed with price 0; a market order carries no time
  in force (Bluefin's rule), the others GTT, IOC or FOK.
- Every order is signed with an expiry: ``taker_expiry_s`` for orders that act at once or never (market,
  IOC, FOK), ``resting_expiry_s`` for those that rest (limits, stops, targets).
- Bluefin's order statuses: STANDBY (an untriggered stop) and OPEN are open; PARTIALLY_FILLED_OPEN is
  partially filled; FILLED; CANCELLED, EXPIRED, PARTIALLY_FILLED_CANCELED and PARTIALLY_FILLED_EXPIRED end it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.bluefin_pro.signing import SignedOrderFields, SuiKey, sign_fields
from shared.bluefin_pro.units import from_e9, from_e9_or, to_e9
from shared.exchange.base import Account, ExchangePosition
from shared.models import Fill, OrderRequest, OrderStatus, OrderType, Position, Side, TimeInForce

PRO_TYPES = {
    OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT", OrderType.STOP_MARKET: "STOP_MARKET",
    OrderType.STOP_LIMIT: "STOP_LIMIT", OrderType.TAKE_PROFIT: "TAKE_PROFIT_MARKET",
    OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT_LIMIT",
}  # fmt: skip
OUR_TYPES = {pro: ours for ours, pro in PRO_TYPES.items()} | {
    "STOP_LOSS_MARKET": OrderType.STOP_MARKET,
    "STOP_LOSS_LIMIT": OrderType.STOP_LIMIT,
}
STATUSES = {
    "STANDBY": OrderStatus.OPEN, "OPEN": OrderStatus.OPEN,
    "PARTIALLY_FILLED_OPEN": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED, "CANCELLED": OrderStatus.CANCELED, "EXPIRED": OrderStatus.CANCELED,
    "PARTIALLY_FILLED_CANCELED": OrderStatus.CANCELED, "PARTIALLY_FILLED_EXPIRED": OrderStatus.CANCELED,
}  # fmt: skip
SIDES = {Side.BUY: "LONG", Side.SELL: "SHORT"}
OUR_SIDES = {"LONG": Side.BUY, "SHORT": Side.SELL}
# cancellation reasons that are the trader's own doing (anything else is Bluefin refusing or ending the order)
OWN_CANCELS = frozenset(
    {"USER_CANCELLED", "USER_CANCELLED_ALL_ON_MARKET", "USER_CANCELLED_ALL_STANDBY_ON_MARKET"}
)


def acts_at_once(request: OrderRequest) -> bool:
    """A market, IOC or FOK order: it trades on arrival or not at all."""
    return request.order_type is OrderType.MARKET or request.time_in_force in (
        TimeInForce.IOC,
        TimeInForce.FOK,
    )


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_millis(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


@dataclass(frozen=True)
class SignedOrder:
    body: dict[str, Any]  # the request body of POST /api/v1/trade/orders
    order_hash: str
    signed_at: datetime
    expires_at: datetime
    standby: bool  # a stop or take-profit: Bluefin keeps it apart (standby) until it triggers


def sign_order(
    request: OrderRequest,
    key: SuiKey,
    ids_id: str,
    leverage: float,
    isolated: bool,
    now: datetime,
    taker_expiry_s: float,
    resting_expiry_s: float,
) -> SignedOrder:
    """The signed create-order request for ``request`` (prices already on the market's tick)."""
    lifetime = taker_expiry_s if acts_at_once(request) else resting_expiry_s
    expires_at = now + timedelta(seconds=lifetime)
    fields = SignedOrderFields(
        ids_id=ids_id, account=key.address, symbol=request.symbol,
        price_e9=to_e9(request.price) if request.price is not None else 0,
        quantity_e9=to_e9(request.quantity), leverage_e9=to_e9(leverage), side=SIDES[request.side],
        is_isolated=isolated, expires_at_ms=millis(expires_at), salt=secrets.randbits(63),
        signed_at_ms=millis(now),
    )  # fmt: skip
    body: dict[str, Any] = {
        "signedFields": fields.wire(), "signature": sign_fields(key, fields.message()),
        "clientOrderId": request.client_id, "type": PRO_TYPES[request.order_type],
        "reduceOnly": request.reduce_only, "postOnly": request.post_only,
    }  # fmt: skip
    if request.order_type.has_limit:  # market-like orders carry no time in force (Bluefin's rule)
        body["timeInForce"] = request.time_in_force.value
    if request.trigger_price is not None:
        body["triggerPriceE9"] = str(to_e9(request.trigger_price))
    return SignedOrder(body, fields.order_hash(), from_millis(fields.signed_at_ms), expires_at,
                       request.order_type.has_trigger)  # fmt: skip


def trade_fee(trade: dict[str, Any]) -> float:
    """What a trade cost us: the size of its trading fee, plus its gas fee when that is charged in USDC.
    (Bluefin's spec does not say which sign a paid fee carries, and its example is negative: a rebate would
    be booked as a cost.)"""
    fee = abs(from_e9_or(trade.get("tradingFeeE9")))
    if str(trade.get("gasFeeAsset") or "USDC").upper() == "USDC":
        fee += abs(from_e9_or(trade.get("gasFeeE9")))
    return fee


def parse_trade(trade: dict[str, Any], client_id: str) -> Fill:
    """One of our trades (``Trade``): an individual fill, deduplicated by Bluefin's trade id."""
    side = OUR_SIDES.get(str(trade.get("side")), Side.BUY)
    return Fill(
        trade_id=f"pro:{trade['id']}", client_id=client_id, symbol=str(trade.get("symbol", "")), side=side,
        quantity=from_e9(trade["quantityE9"]), price=from_e9(trade["priceE9"]),
        fee=trade_fee(trade), time=from_millis(trade["executedAtMillis"]),
    )  # fmt: skip


def parse_positions(account: dict[str, Any]) -> list[ExchangePosition]:
    found = []
    for raw in account.get("positions", []):
        size = from_e9_or(raw.get("sizeE9"))
        if size == 0:
            continue
        sign = -1 if raw.get("side") == "SHORT" else 1
        liquidation = from_e9_or(raw.get("liquidationPriceE9"))
        found.append(
            ExchangePosition(
                Position(str(raw["symbol"]), sign * size, from_e9_or(raw.get("avgEntryPriceE9"))),
                from_e9_or(raw.get("clientSetLeverageE9"), 1.0) or 1.0,
                from_e9_or(raw.get("isolatedMarginE9")) or from_e9_or(raw.get("marginRequiredE9")),
                liquidation if liquidation > 0 else None,
            )
        )
    return found


def parse_account(account: dict[str, Any]) -> Account:
    """Equity is the account value, the balance that minus unrealised PnL; what is not available is in use."""
    equity = from_e9_or(account.get("totalAccountValueE9"))
    unrealized = from_e9_or(account.get("totalUnrealizedPnlE9"))
    balance = equity - unrealized
    available = from_e9_or(account.get("marginAvailableE9"), balance)
    return Account(balance, equity, unrealized, 0.0, max(balance - available, 0.0))
