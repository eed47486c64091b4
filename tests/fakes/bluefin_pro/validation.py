"""Checks of the signed trading requests (orders, leverage, isolated margin): shape, canonical numbers,
the signature (rebuilt pretty JSON, Sui personal message), the signer, the exchange's idsId, freshness and
the market's rules. Each problem raises ``ApiError`` with the HTTP status and an Error body naming it."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.bluefin_pro import crypto
from tests.fakes.bluefin_pro.engine import MARKET_TYPES, ORDER_TYPES, STANDBY_TYPES
from tests.fakes.bluefin_pro.market import Spec

SYMBOL = re.compile(r"[A-Za-z0-9_-]{1,32}")
TIME_IN_FORCE = ("GTT", "IOC", "FOK")
SELF_TRADE_PREVENTION = ("TAKER", "MAKER", "BOTH")


class ApiError(Exception):
    """An answer with an Error body; ``refused`` = recorded in the fake's refusals."""

    def __init__(self, status: int, code: str, message: str, refused: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.refused = refused

    def body(self) -> dict[str, str]:
        return {"errorCode": self.code, "message": self.message}


def bad(message: str, code: str = "INVALID_REQUEST") -> ApiError:
    return ApiError(400, code, message)


@dataclass(frozen=True)
class Signed:
    """A verified signed request: the signer's address, and whether signedAtMillis is too old."""

    signer: str
    too_old: bool


def _require(fields: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if name not in fields:
        raise bad(f"{where}.{name} is missing")
    value = fields[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad(f"{where}.{name} has the wrong type ({type(value).__name__})")
    return value


def _canonical(fields: dict[str, Any], name: str) -> int:
    value = _require(fields, name, str, "signedFields")
    if not crypto.is_canonical_uint(value):
        raise bad(f"signedFields.{name} {value!r} is not a canonical decimal integer string")
    return int(value)


def _address(fields: dict[str, Any], name: str) -> str:
    value = _require(fields, name, str, "signedFields")
    if not crypto.is_address(value):
        raise bad(f"signedFields.{name} {value!r} is not a lowercase 0x + 64 hex address")
    return str(value)


def _millis(fields: dict[str, Any], name: str) -> int:
    value = _require(fields, name, int, "signedFields")
    if not 0 <= value <= crypto.U64_MAX:
        raise bad(f"signedFields.{name} out of range")
    return int(value)


def _symbol(fields: dict[str, Any]) -> str:
    value = _require(fields, "symbol", str, "signedFields")
    if not SYMBOL.fullmatch(value):
        raise bad(f"signedFields.symbol {value!r} is not a market symbol", "INVALID_SYMBOL")
    return str(value)


def signed_fields(body: Any) -> tuple[dict[str, Any], str]:
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    fields = _require(body, "signedFields", dict, "body")
    signature = _require(body, "signature", str, "body")
    return fields, signature


def verify(
    fields: list[tuple[str, str | bool]],
    signature: str,
    account: str,
    signed_at: int,
    ids: str,
    expected_ids: str,
    token_address: str,
    window_s: float,
) -> Signed:
    """Signature, signer, token, idsId and freshness checks common to every signed request."""
    try:
        signer = crypto.verify_signed_request(fields, signature)
    except crypto.SignatureError as exc:
        raise ApiError(401, "INVALID_SIGNATURE", f"invalid signature: {exc}") from exc
    if signer != account:
        raise ApiError(401, "INVALID_SIGNATURE", f"signer {signer} is not accountAddress {account}")
    if account != token_address:
        raise ApiError(403, "FORBIDDEN", f"the access token is for {token_address}, not {account}")
    if ids != expected_ids:
        raise bad(f"idsId {ids} is not this exchange's ({expected_ids})", "INVALID_IDS_ID")
    now = time.time() * 1000
    if signed_at > now + window_s * 1000:
        raise bad("signedAtMillis is in the future", "INVALID_INPUT")
    return Signed(signer, signed_at < now - window_s * 1000)


# --- orders --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderRequest:
    signed: dict[str, Any]
    signer: str
    order_hash: str
    too_old: bool
    type: str
    reduce_only: bool
    post_only: bool
    tif: str
    trigger: int | None
    stp: str
    client_order_id: str | None


def _optional(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise bad(f"{name} has the wrong type ({type(value).__name__})")
    return value


def parse_order(body: Any, expected_ids: str, token_address: str, window_s: float) -> OrderRequest:
    """Shape and signature of a CreateOrderRequest (market rules are checked by ``check_order``)."""
    fields, signature = signed_fields(body)
    for name in ("priceE9", "quantityE9", "leverageE9", "salt"):
        _canonical(fields, name)
    account = _address(fields, "accountAddress")
    ids = _address(fields, "idsId")
    _symbol(fields)
    if _require(fields, "side", str, "signedFields") not in ("LONG", "SHORT"):
        raise bad(f"signedFields.side {fields['side']!r} is not LONG or SHORT")
    _require(fields, "isIsolated", bool, "signedFields")
    _millis(fields, "expiresAtMillis")
    signed_at = _millis(fields, "signedAtMillis")
    order_type = _require(body, "type", str, "body")
    if order_type not in ORDER_TYPES:
        raise bad(f"order type {order_type!r} is not supported by the fake", "INVALID_INPUT")
    reduce_only = _require(body, "reduceOnly", bool, "body")
    post_only = _optional(body, "postOnly", bool, False)
    tif = _optional(body, "timeInForce", str, "GTT")
    tif = "GTT" if tif == "UNSPECIFIED" else tif
    if tif not in TIME_IN_FORCE:
        raise bad(f"timeInForce {tif!r} is not GTT, IOC or FOK")
    stp = _optional(body, "selfTradePreventionType", str, "MAKER")
    stp = "MAKER" if stp == "UNSPECIFIED" else stp
    if stp not in SELF_TRADE_PREVENTION:
        raise bad(f"selfTradePreventionType {stp!r} is unknown")
    trigger_text = _optional(body, "triggerPriceE9", str, None)
    if trigger_text is not None and not crypto.is_canonical_uint(trigger_text):
        raise bad(f"triggerPriceE9 {trigger_text!r} is not a canonical decimal integer string")
    client_order_id = _optional(body, "clientOrderId", str, None)
    sent_hash = _optional(body, "orderHash", str, "")
    checked = verify(
        crypto.order_fields(fields), signature, account, signed_at, ids, expected_ids, token_address, window_s
    )
    order_hash = crypto.order_hash(fields)
    if sent_hash not in ("", order_hash, "0x" + order_hash):
        raise bad(
            f"orderHash {sent_hash} does not match the signed fields ({order_hash})", "INVALID_ORDER_HASH"
        )
    trigger = int(trigger_text) if trigger_text is not None else None
    return OrderRequest(
        fields,
        checked.signer,
        order_hash,
        checked.too_old,
        order_type,
        reduce_only,
        post_only,
        tif,
        trigger,
        stp,
        client_order_id,
    )


def check_order(order: OrderRequest, spec: Spec | None) -> None:
    """The market's rules: tick, step, quantity and price bounds, leverage; 400 naming the problem."""
    fields = order.signed
    if spec is None:
        raise bad(f"unknown market {fields['symbol']}", "INVALID_SYMBOL")
    if spec.status not in ("ACTIVE", "BETA"):
        raise bad(f"{spec.symbol} is not trading", "MARKET_NOT_TRADING")
    price, quantity, leverage = int(fields["priceE9"]), int(fields["quantityE9"]), int(fields["leverageE9"])
    is_market = order.type in MARKET_TYPES
    if quantity % spec.step:
        raise bad(
            f"quantityE9 {quantity} is not a multiple of the step {spec.step}", "QUANTITY_OUT_OF_STEP_SIZE"
        )
    most = spec.max_market_quantity if is_market else spec.max_limit_quantity
    if not spec.min_quantity <= quantity <= most:
        raise bad(f"quantityE9 {quantity} outside {spec.min_quantity}..{most}", "QUANTITY_OUT_OF_BOUND")
    if is_market and price != 0:
        raise bad(f"priceE9 must be 0 for a {order.type} order", "INVALID_INPUT")
    if not is_market:
        _check_price(spec, price, "priceE9")
    if order.type in STANDBY_TYPES:
        if order.trigger is None:
            raise bad(f"a {order.type} order needs triggerPriceE9", "INVALID_INPUT")
        _check_price(spec, order.trigger, "triggerPriceE9")
    elif order.trigger not in (None, 0):
        raise bad(
            f"triggerPriceE9 is only for stop and take-profit orders, not {order.type}", "INVALID_INPUT"
        )
    if leverage != 0 and not 10**9 <= leverage <= spec.max_leverage:
        raise bad(f"leverageE9 {leverage} outside 1x..{spec.max_leverage // 10**9}x", "INVALID_LEVERAGE")
    if order.post_only and is_market:
        raise bad("a market order cannot be post-only", "INVALID_INPUT")
    if spec.isolated_only and not fields["isIsolated"]:
        raise bad(f"{spec.symbol} is isolated-only", "INVALID_INPUT")


def _check_price(spec: Spec, price: int, name: str) -> None:
    if price % spec.tick:
        raise bad(f"{name} {price} is not a multiple of the tick {spec.tick}", "PRICE_OUT_OF_TICK_SIZE")
    if not spec.min_price <= price <= spec.max_price:
        raise bad(f"{name} {price} outside {spec.min_price}..{spec.max_price}", "PRICE_OUT_OF_BOUND")


# --- leverage and margin -------------------------------------------------------------------------------
@dataclass(frozen=True)
class AccountCommand:
    account: str
    symbol: str
    amount: int  # leverage e9, or margin e9
    add: bool
    signer: str


def _fresh(checked: Any) -> Any:
    """A verified account command, refused when it was signed too long ago."""
    if checked.too_old:
        raise bad("signedAtMillis is too old", "SIGNED_AT_TOO_OLD")
    return checked


def parse_leverage(body: Any, expected_ids: str, token_address: str, window_s: float) -> AccountCommand:
    fields, signature = signed_fields(body)
    account = _address(fields, "accountAddress")
    ids = _address(fields, "idsId")
    symbol = _symbol(fields)
    leverage = _canonical(fields, "leverageE9")
    _canonical(fields, "salt")
    signed_at = _millis(fields, "signedAtMillis")
    checked = _fresh(verify(crypto.leverage_fields(fields), signature, account, signed_at, ids, expected_ids,
                            token_address, window_s))  # fmt: skip
    return AccountCommand(account, symbol, leverage, False, checked.signer)


def parse_margin(body: Any, expected_ids: str, token_address: str, window_s: float) -> AccountCommand:
    fields, signature = signed_fields(body)
    account = _address(fields, "accountAddress")
    ids = _address(fields, "idsId")
    symbol = _symbol(fields)
    operation = _require(fields, "operation", str, "signedFields")
    if operation not in ("ADD", "SUBTRACT"):
        raise bad(f"signedFields.operation {operation!r} is not ADD or SUBTRACT")
    amount = _canonical(fields, "quantityE9")
    _canonical(fields, "salt")
    signed_at = _millis(fields, "signedAtMillis")
    checked = _fresh(verify(crypto.margin_fields(fields), signature, account, signed_at, ids, expected_ids,
                            token_address, window_s))  # fmt: skip
    if amount == 0:
        raise bad("quantityE9 must be positive", "INVALID_INPUT")
    return AccountCommand(account, symbol, amount, operation == "ADD", checked.signer)
