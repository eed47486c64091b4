"""Test-side helpers for the fake Bluefin Pro: a wallet that signs as Bluefin's SDKs do (PyNaCl, written
apart from the fake's verifier), requests built by hand in each SDK's exact form, stream clients, and
validation of answers and frames against Bluefin's OpenAPI spec."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import yaml
from jsonschema.exceptions import ValidationError
from nacl.signing import SigningKey
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.conftest import wait_for

SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "bluefin-pro"
SDK_TEST_KEY = "3427d19dcf5781f0874c36c78aec22c03acda435d69efcbf249e8821793567a1"
SDK_TEST_ADDRESS = "0x9b11fafc580f23932f379d99ab6cc4c638e85ba4c252fc909296f3f9e6cea786"
E9 = 10**9


def now_ms() -> int:
    return int(time.time() * 1000)


def _blake2b(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def _uleb(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


@dataclass
class Wallet:
    key: SigningKey

    @classmethod
    def from_hex(cls, private_key: str) -> Wallet:
        return cls(SigningKey(bytes.fromhex(private_key)))

    @classmethod
    def random(cls) -> Wallet:
        return cls(SigningKey.generate())

    @property
    def public_key(self) -> bytes:
        return bytes(self.key.verify_key)

    @property
    def address(self) -> str:
        return "0x" + _blake2b(b"\x00" + self.public_key).hex()

    def _wire(self, digest: bytes) -> bytes:
        return b"\x00" + self.key.sign(digest).signature + self.public_key

    def sign_personal(self, message: bytes) -> str:
        """Sui personal-message signature, standard base64 (v2 login, orders, leverage, margin)."""
        digest = _blake2b(bytes([3, 0, 0]) + _uleb(len(message)) + message)
        return base64.b64encode(self._wire(digest)).decode()

    def sign_v1(self, body: bytes) -> str:
        """The Python SDK's v1 login signature: blake2b of the body, URL-safe base64."""
        return base64.urlsafe_b64encode(self._wire(_blake2b(body))).decode()


# --- login ---------------------------------------------------------------------------------------------
def login_body(
    address: str, signed_at: int | None = None, compact: bool = False, audience: str = "api"
) -> bytes:
    """The LoginRequest bytes: the Python SDK's ``json.dumps`` (spaced) or Rust/TS compact JSON."""
    body = {"accountAddress": address, "signedAtMillis": signed_at or now_ms(), "audience": audience}
    return json.dumps(body, separators=(",", ":") if compact else None).encode()


def login(
    client: httpx.Client, wallet: Wallet, v2: bool = False, compact: bool = False, query: str = ""
) -> httpx.Response:
    """Python SDK (v1, spaced) by default; ``v2=True, compact=True`` is the Rust/TS form."""
    body = login_body(wallet.address, compact=compact)
    signature = wallet.sign_personal(body) if v2 else wallet.sign_v1(body)
    path = "/auth/v2/token" if v2 else "/auth/token"
    return client.post(
        path + query,
        content=body,
        headers={"payloadSignature": signature, "Content-Type": "application/json"},
    )


def access_token(client: httpx.Client, wallet: Wallet) -> str:
    response = login(client, wallet)
    assert response.status_code == 200, response.text
    return str(response.json()["accessToken"])


# --- signed requests -----------------------------------------------------------------------------------
def order_signed_fields(
    wallet: Wallet,
    ids: str,
    symbol: str = "BTC-PERP",
    price: str = "0",
    quantity: str = "10000000",
    side: str = "LONG",
    leverage: str = "3000000000",
    isolated: bool = True,
    expires: int | None = None,
    salt: str | None = None,
    signed_at: int | None = None,
) -> dict[str, Any]:
    now = now_ms()
    return {
        "symbol": symbol,
        "accountAddress": wallet.address,
        "priceE9": price,
        "quantityE9": quantity,
        "side": side,
        "leverageE9": leverage,
        "isIsolated": isolated,
        "salt": salt or str(now * 1000 + secrets.randbelow(1000)),
        "idsId": ids,
        "expiresAtMillis": expires or now + 600_000,
        "signedAtMillis": signed_at or now,
    }


def order_message(fields: dict[str, Any]) -> bytes:
    """What every SDK signs for an order: ``json.dumps(..., indent=2)`` of the fixed keys, all strings."""
    message = {
        "type": "Bluefin Pro Order",
        "ids": fields["idsId"],
        "account": fields["accountAddress"],
        "market": fields["symbol"],
        "price": fields["priceE9"],
        "quantity": fields["quantityE9"],
        "leverage": fields["leverageE9"],
        "side": fields["side"],
        "positionType": "ISOLATED" if fields["isIsolated"] else "CROSS",
        "expiration": str(fields["expiresAtMillis"]),
        "salt": fields["salt"],
        "signedAt": str(fields["signedAtMillis"]),
    }
    return json.dumps(message, indent=2).encode()


def python_order(
    wallet: Wallet,
    fields: dict[str, Any],
    order_type: str = "LIMIT",
    client_order_id: str | None = None,
    reduce_only: bool = False,
    post_only: bool = False,
    time_in_force: str | None = "GTT",
    trigger: str | None = None,
) -> dict[str, Any]:
    """CreateOrderRequest as the Python SDK sends it: orderHash "", None fields dropped."""
    body = {
        "signedFields": fields,
        "signature": wallet.sign_personal(order_message(fields)),
        "clientOrderId": client_order_id,
        "type": order_type,
        "reduceOnly": reduce_only,
        "postOnly": post_only,
        "timeInForce": time_in_force,
        "triggerPriceE9": trigger,
        "selfTradePreventionType": None,
        "orderHash": "",
    }
    return {k: v for k, v in body.items() if v is not None}


def rust_order(
    wallet: Wallet,
    fields: dict[str, Any],
    order_type: str = "LIMIT",
    reduce_only: bool = False,
    post_only: bool | None = True,
    time_in_force: str | None = "GTT",
    trigger: str | None = None,
) -> dict[str, Any]:
    """CreateOrderRequest as the Rust SDK's examples send it (no orderHash; STP MAKER)."""
    body = {
        "signedFields": fields,
        "signature": wallet.sign_personal(order_message(fields)),
        "type": order_type,
        "reduceOnly": reduce_only,
        "postOnly": post_only,
        "timeInForce": time_in_force,
        "triggerPriceE9": trigger,
        "selfTradePreventionType": "MAKER",
    }
    return {k: v for k, v in body.items() if v is not None}


def leverage_request(
    wallet: Wallet, ids: str, symbol: str, leverage: str, signed_at: int | None = None
) -> dict[str, Any]:
    fields = {
        "accountAddress": wallet.address,
        "symbol": symbol,
        "leverageE9": leverage,
        "salt": str(now_ms()),
        "idsId": ids,
        "signedAtMillis": signed_at or now_ms(),
    }
    message = {
        "type": "Bluefin Pro Leverage Adjustment",
        "ids": ids,
        "account": wallet.address,
        "market": symbol,
        "leverage": leverage,
        "salt": fields["salt"],
        "signedAt": str(fields["signedAtMillis"]),
    }
    return {"signedFields": fields, "signature": wallet.sign_personal(json.dumps(message, indent=2).encode())}


def margin_request(wallet: Wallet, ids: str, symbol: str, add: bool, amount: str) -> dict[str, Any]:
    fields = {
        "idsId": ids,
        "accountAddress": wallet.address,
        "symbol": symbol,
        "operation": "ADD" if add else "SUBTRACT",
        "quantityE9": amount,
        "salt": str(now_ms()),
        "signedAtMillis": now_ms(),
    }
    message = {
        "type": "Bluefin Pro Margin Adjustment",
        "ids": ids,
        "account": wallet.address,
        "market": symbol,
        "add": add,
        "amount": amount,
        "salt": fields["salt"],
        "signedAt": str(fields["signedAtMillis"]),
    }
    return {"signedFields": fields, "signature": wallet.sign_personal(json.dumps(message, indent=2).encode())}


# --- a logged-in account -------------------------------------------------------------------------------
@dataclass
class Session:
    """A wallet logged in to the fake, with an HTTP client carrying its bearer token."""

    url: str
    wallet: Wallet
    ids: str
    client: httpx.Client
    token: str

    @classmethod
    def open(cls, url: str, ids: str, wallet: Wallet | None = None) -> Session:
        wallet = wallet or Wallet.random()
        client = httpx.Client(base_url=url, timeout=5.0)
        token = access_token(client, wallet)
        client.headers["Authorization"] = f"Bearer {token}"
        return cls(url, wallet, ids, client, token)

    def fields(self, **kw: Any) -> dict[str, Any]:
        return order_signed_fields(self.wallet, self.ids, **kw)

    def post_order(self, body: dict[str, Any]) -> httpx.Response:
        return self.client.post("/api/v1/trade/orders", json=body)

    def place(
        self,
        order_type: str = "LIMIT",
        *,
        symbol: str = "BTC-PERP",
        price: float = 0.0,
        quantity: float = 0.01,
        side: str = "LONG",
        trigger: float | None = None,
        reduce_only: bool = False,
        post_only: bool = False,
        time_in_force: str | None = "GTT",
        client_order_id: str | None = None,
        expires: int | None = None,
    ) -> str:
        """Place an order in the Python SDK's form; its hash (asserting the 202)."""
        fields = self.fields(
            symbol=symbol,
            price=str(round(price * E9)),
            quantity=str(round(quantity * E9)),
            side=side,
            expires=expires,
        )
        body = python_order(
            self.wallet,
            fields,
            order_type,
            client_order_id,
            reduce_only,
            post_only,
            time_in_force,
            str(round(trigger * E9)) if trigger is not None else None,
        )
        response = self.post_order(body)
        assert response.status_code == 202, response.text
        return str(response.json()["orderHash"])

    def close(self) -> None:
        self.client.close()


# --- streams -------------------------------------------------------------------------------------------
@dataclass
class StreamClient:
    """A WebSocket client that subscribes, checks the acknowledgement comes first, then collects frames."""

    ws: ClientConnection
    ack: dict[str, Any]
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def open(cls, url: str, path: str, subscribe: dict[str, Any], token: str | None = None) -> StreamClient:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        ws = connect(
            url.replace("http", "ws") + path,
            additional_headers=headers,
            proxy=None,
            open_timeout=5,
            legacy=True,
        )
        ws.send(json.dumps(subscribe))
        ack = json.loads(ws.recv(timeout=5))  # the very next frame, as the Python SDK reads it
        client = cls(ws, ack)
        threading.Thread(target=client._read, daemon=True).start()
        return client

    def _read(self) -> None:
        try:
            for message in self.ws:
                self.frames.append(json.loads(message))
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("event") == name]

    def wait(self, check: Callable[[dict[str, Any]], bool], timeout_s: float = 5.0) -> dict[str, Any]:
        """The first frame for which ``check`` holds (waiting for it)."""
        found: dict[str, Any] = wait_for(
            lambda: next((f for f in list(self.frames) if check(f)), None), timeout_s
        )
        return found

    def close(self) -> None:
        self.ws.close()


def account_stream(url: str, token: str, streams: list[str] | None = None) -> StreamClient:
    names = streams or [
        "AccountOrderUpdate",
        "AccountTradeUpdate",
        "AccountPositionUpdate",
        "AccountUpdate",
        "AccountTransactionUpdate",
        "AccountCommandFailureUpdate",
    ]
    return StreamClient.open(url, "/ws/account", {"method": "Subscribe", "dataStreams": names}, token)


def market_stream(url: str, symbol: str, streams: list[str]) -> StreamClient:
    message = {"method": "Subscribe", "dataStreams": [{"symbol": symbol, "streams": streams}]}
    return StreamClient.open(url, "/ws/market", message)


# --- the spec ------------------------------------------------------------------------------------------
class _Request:
    """An httpx request as openapi-core sees it. Every path is matched against the spec's root server: the
    path-level ``servers`` in bluefin-api.yaml sit beside ``$ref`` and OpenAPI 3.0 ignores them there."""

    host_url = "https://api.sui-staging.bluefin.io"

    def __init__(self, request: httpx.Request) -> None:
        url = urlparse(str(request.url))
        self.path = url.path
        self.method = request.method.lower()
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("Content-Type", "application/json")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.status_code = status
        self.data = data
        self.headers = Headers(headers)
        self.content_type = headers.get("content-type", "")


class Spec:
    """Bluefin's OpenAPI spec: REST answers through openapi-core, stream payloads through the component
    schemas of websocket-api.yaml (and the files it $refs)."""

    def __init__(self) -> None:
        # The published spec has a duplicate operationId (getLeaderboard), so it is not checked as a document.
        self.api = OpenAPI.from_file_path(
            str(SPECS / "bluefin-api.yaml"), config=Config(spec_validator_cls=None)
        )
        resources = [
            (p.as_uri(), DRAFT4.create_resource(yaml.safe_load(p.read_text()))) for p in SPECS.glob("*.yaml")
        ]
        self.registry: Registry[Any] = Registry().with_resources(resources)
        self.ws_uri = (SPECS / "websocket-api.yaml").as_uri()

    def check(self, response: httpx.Response, body: Any = None) -> None:
        """Validate ``response`` (or ``body`` in place of its body) against the spec; raises if invalid."""
        data = response.content if body is None else json.dumps(body).encode()
        self.api.validate_response(
            _Request(response.request), _Response(response.status_code, data, dict(response.headers))
        )

    def schema_errors(self, name: str, payload: Any) -> list[str]:
        """What is wrong with ``payload`` as the websocket-api.yaml component ``name``."""
        return [e.message for e in self.validation_errors(name, payload)]

    def validation_errors(self, name: str, payload: Any) -> list[ValidationError]:
        validator = OAS30Validator(
            {"$ref": f"{self.ws_uri}#/components/schemas/{name}"}, registry=self.registry
        )
        return list(validator.iter_errors(payload))


ACCOUNT_PAYLOADS = (
    "AccountOrderUpdate",
    "AccountTradeUpdate",
    "AccountAggregatedTradeUpdate",
    "AccountPositionUpdate",
    "AccountUpdate",
    "AccountTransactionUpdate",
    "AccountCommandFailureUpdate",
)


def frame_errors(spec: Spec, kind: str, frame: dict[str, Any]) -> list[str]:
    """An account or market frame against the spec: the envelope's enums, and the payload against the schema
    its ``event`` maps to. (The envelopes' ``payload: oneOf`` cannot be used as written: AccountTradeUpdate
    and AccountAggregatedTradeUpdate are the same schema, so a trade matches both; the discriminator mapping
    is what tells them apart.)"""
    if "success" in frame:
        return spec.schema_errors("SubscriptionResponseMessage", frame)
    event = frame.get("event")
    if kind == "account":
        errors = spec.schema_errors("AccountEventType", event)
        errors += spec.schema_errors("AccountEventReason", frame.get("reason"))
        if event not in ACCOUNT_PAYLOADS:
            return errors
        return errors + spec.schema_errors(str(event), frame.get("payload"))
    errors = spec.schema_errors("MarketEventType", event)
    if errors:
        return errors
    payload = frame.get("payload")
    if event == "OrderbookPartialDepthUpdate" and isinstance(payload, dict):
        # depthLevel is declared {type: string, enum: [5, 10, 20]}: no value satisfies both. The fake sends
        # the string form ("5"), so the enum is checked on its string forms.
        level = payload.get("depthLevel")
        if level not in ("5", "10", "20"):
            errors.append(f"depthLevel {level!r} is not one of '5', '10', '20'")
        found = spec.validation_errors(str(event), payload)
        return errors + [
            e.message for e in found if not (list(e.path) == ["depthLevel"] and e.validator == "enum")
        ]
    return errors + spec.schema_errors(str(event), payload)
