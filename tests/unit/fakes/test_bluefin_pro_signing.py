"""The fake verifies signatures as Bluefin does: the research notes' test vectors (computed apart, with the
SDK's published test key) verify in the fake's own code; requests in each SDK's exact form are accepted;
any change of a signed byte is refused, and a refused order never exists."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.bluefin_pro import FakeBluefinPro, crypto
from tests.unit.fakes.bluefin_sdk import (
    SDK_TEST_ADDRESS,
    SDK_TEST_KEY,
    Session,
    Wallet,
    leverage_request,
    login,
    login_body,
    margin_request,
    now_ms,
    order_message,
    python_order,
    rust_order,
)

# The research notes' test vectors (computed with the `cryptography` package, not with this code).
SIGNED_AT = 1725931543867
PY_LOGIN = (
    f'{{"accountAddress": "{SDK_TEST_ADDRESS}", "signedAtMillis": {SIGNED_AT}, "audience": "api"}}'.encode()
)
COMPACT_LOGIN = (
    f'{{"accountAddress":"{SDK_TEST_ADDRESS}","signedAtMillis":{SIGNED_AT},"audience":"api"}}'.encode()
)
V2_PY = (
    "APeS8WzVJl9fgxgRHgt9UBX/a67wpBnnCnTIhVz3dVMN6R2R+vy2kTAboqq6MBL4m+CuBAl4gwX1WPMfWgiBzAGYnjWQQik2"
    "Dfv1OpJ32zbUAfWXxMCmk6zChr9Dkmmlyw=="
)
V1_PY = (
    "AOofMLlIOwVhvex0Z58T5ixRfRBtACo6f4p_uTsnP2Kxux6VDz8Gp6XdbUqh2YCYiI9ivLMg5puvV-AWfxXTqwaYnjWQQik2"
    "Dfv1OpJ32zbUAfWXxMCmk6zChr9Dkmmlyw=="
)
V2_COMPACT = (
    "ALyZ4XvKLxhJLsdSaMbE5bpoNgrfZyP22t71U5l79iLkZb3SQrPSDIBCqtipbqmQEsgDQqhyklToDwZSri6vVQyYnjWQQik2"
    "Dfv1OpJ32zbUAfWXxMCmk6zChr9Dkmmlyw=="
)
VECTOR_ORDER: dict[str, Any] = {
    "idsId": "0x8e78225d72b1d7b1f63e5e9f88f09b12ca66c84e2fc8b91fc10f6a0c51230615",
    "accountAddress": SDK_TEST_ADDRESS,
    "symbol": "ETH-PERP",
    "priceE9": "3500000000000",
    "quantityE9": "100000000",
    "leverageE9": "0",
    "side": "LONG",
    "isIsolated": False,
    "expiresAtMillis": 2037603360000,
    "salt": "1725930601205",
    "signedAtMillis": SIGNED_AT,
}
ORDER_SIG = (
    "ACNkmpp9TET2E8ncdER04WfnSFHiyqmVOxN4SmZr58qmuf1C9IrrIDVgAhL2+lJLBd3uLsEsg0QIjrZ7675WvwGYnjWQQik2"
    "Dfv1OpJ32zbUAfWXxMCmk6zChr9Dkmmlyw=="
)
RUST_HASH = "d4a067bf76ed13fd0af798641ba697e69f46f224001f504aa7c66fd301b96df4"
PYTHON_SDK_HASH = "e96fcaac450fa938a4b35922a157654aa4e16698dd66443463d23071af161e88"


# --- the vectors, in the fake's own code ---------------------------------------------------------------
def test_the_sdk_test_key_gives_the_documented_address() -> None:
    wallet = Wallet.from_hex(SDK_TEST_KEY)
    assert wallet.address == SDK_TEST_ADDRESS
    assert crypto.address_of(wallet.public_key) == SDK_TEST_ADDRESS


@pytest.mark.parametrize(
    ("body", "signature", "v2"),
    [(PY_LOGIN, V1_PY, False), (PY_LOGIN, V2_PY, True), (COMPACT_LOGIN, V2_COMPACT, True)],
    ids=["v1-python-spaced", "v2-python-spaced", "v2-rust-ts-compact"],
)
def test_login_vectors_verify_over_the_raw_body(body: bytes, signature: str, v2: bool) -> None:
    assert crypto.verify_login(body, signature, v2=v2) == SDK_TEST_ADDRESS
    other = COMPACT_LOGIN if body == PY_LOGIN else PY_LOGIN  # the same fields, other spacing
    with pytest.raises(crypto.SignatureError):
        crypto.verify_login(other, signature, v2=v2)
    with pytest.raises(crypto.SignatureError):
        crypto.verify_login(body, signature, v2=not v2)  # v1 and v2 digests are not interchangeable


def test_the_order_vector_verifies_and_hashes_as_rust_and_the_chain() -> None:
    assert crypto.verify_signed_request(crypto.order_fields(VECTOR_ORDER), ORDER_SIG) == SDK_TEST_ADDRESS
    assert crypto.order_hash(VECTOR_ORDER) == RUST_HASH
    assert crypto.order_hash(VECTOR_ORDER) != PYTHON_SDK_HASH
    # the fake's rebuilt message is byte for byte what the SDKs' json.dumps(indent=2) signs
    assert crypto.signed_message(crypto.order_fields(VECTOR_ORDER)) == order_message(VECTOR_ORDER)


@pytest.mark.parametrize("name", [k for k in VECTOR_ORDER if k != "isIsolated"])
def test_one_changed_signed_field_breaks_the_order_signature(name: str) -> None:
    changed = dict(VECTOR_ORDER)
    value = changed[name]
    if isinstance(value, int):
        changed[name] = value + 1
    elif name == "side":
        changed[name] = "SHORT"
    else:
        changed[name] = value[:-1] + ("1" if value[-1] != "1" else "2")
    with pytest.raises(crypto.SignatureError):
        crypto.verify_signed_request(crypto.order_fields(changed), ORDER_SIG)
    assert crypto.order_hash(changed) != RUST_HASH


def test_the_position_type_is_signed() -> None:
    with pytest.raises(crypto.SignatureError):
        crypto.verify_signed_request(crypto.order_fields({**VECTOR_ORDER, "isIsolated": True}), ORDER_SIG)


def test_a_one_byte_change_of_the_login_body_or_signature_is_refused() -> None:
    tampered = PY_LOGIN.replace(b"1725931543867", b"1725931543868")
    with pytest.raises(crypto.SignatureError):
        crypto.verify_login(tampered, V1_PY, v2=False)
    raw = bytearray(base64.b64decode(V2_COMPACT))
    raw[10] ^= 1
    with pytest.raises(crypto.SignatureError):
        crypto.verify_login(COMPACT_LOGIN, base64.b64encode(bytes(raw)).decode(), v2=True)


def test_uleb128_prefixes_long_messages_with_several_bytes() -> None:
    assert crypto.uleb128(0) == b"\x00" and crypto.uleb128(127) == b"\x7f"
    assert crypto.uleb128(128) == b"\x80\x01" and crypto.uleb128(300) == b"\xac\x02"


# --- over HTTP: each SDK's form ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeBluefinPro]:
    server = FakeBluefinPro()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(shared_fake: FakeBluefinPro) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_fake.url, timeout=5.0) as opened:
        yield opened


@pytest.mark.parametrize(
    ("v2", "compact"),
    [(False, False), (True, True), (True, False)],
    ids=["python-v1", "rust-ts-v2", "python-v2"],
)
def test_each_sdk_login_form_is_accepted(client: httpx.Client, v2: bool, compact: bool) -> None:
    wallet = Wallet.random()
    response = login(
        client, wallet, v2=v2, compact=compact, query="?refreshTokenValidForSeconds=10&readOnly=false"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "accessToken",
        "accessTokenValidForSeconds",
        "refreshToken",
        "refreshTokenValidForSeconds",
    }
    assert body["refreshTokenValidForSeconds"] == 10 and body["accessTokenValidForSeconds"] == 300
    account = client.get("/api/v1/account", headers={"Authorization": f"Bearer {body['accessToken']}"})
    assert account.status_code == 200 and account.json()["accountAddress"] == wallet.address


def test_login_refusals(client: httpx.Client, shared_fake: FakeBluefinPro) -> None:
    wallet = Wallet.random()

    def post(path: str, body: bytes, signature: str) -> int:
        return client.post(path, content=body, headers={"payloadSignature": signature}).status_code

    body = login_body(wallet.address)
    respaced = json.dumps(json.loads(body), separators=(",", ":")).encode()  # same JSON, other bytes
    assert post("/auth/token", respaced, wallet.sign_v1(body)) == 401
    v1_standard = base64.b64encode(base64.urlsafe_b64decode(wallet.sign_v1(body))).decode()
    assert post("/auth/v2/token", body, v1_standard) == 401  # a v1 signature on the v2 endpoint
    assert post("/auth/token", body, "not base64!") == 400
    other = Wallet.random()
    assert post("/auth/token", login_body(other.address), wallet.sign_v1(login_body(other.address))) == 401
    wrong_audience = login_body(wallet.address, audience="web")
    assert post("/auth/token", wrong_audience, wallet.sign_v1(wrong_audience)) == 403
    stale = login_body(wallet.address, signed_at=now_ms() - 120_000)
    assert post("/auth/token", stale, wallet.sign_v1(stale)) == 401
    assert any(path == "/auth/token" and "audience" in why for path, why in shared_fake.refusals)
    assert wallet.address not in {a for a in shared_fake.engine.accounts}


@pytest.fixture
def trader(shared_fake: FakeBluefinPro) -> Iterator[Session]:
    opened = Session.open(shared_fake.url, shared_fake.ids_id)
    yield opened
    opened.close()


def test_python_sdk_order_form_is_accepted(trader: Session, shared_fake: FakeBluefinPro) -> None:
    fields = trader.fields(price="40000000000000", quantity="1000000", side="LONG", isolated=False)
    body = python_order(trader.wallet, fields, "LIMIT", client_order_id="py-1")
    assert body["orderHash"] == "" and "triggerPriceE9" not in body and "selfTradePreventionType" not in body
    # the Python SDK sends json.dumps (spaced) bytes
    response = trader.client.post(
        "/api/v1/trade/orders",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    order_hash = response.json()["orderHash"]
    assert order_hash == crypto.order_hash(fields) and not order_hash.startswith("0x")
    assert shared_fake.orders[order_hash]["clientOrderId"] == "py-1"


def test_rust_sdk_order_forms_are_accepted(trader: Session, shared_fake: FakeBluefinPro) -> None:
    limit = trader.fields(price="40000000000000", quantity="1000000", leverage="10000000000", isolated=False)
    body = rust_order(trader.wallet, limit)
    assert "orderHash" not in body and "clientOrderId" not in body
    response = trader.client.post(
        "/api/v1/trade/orders",
        content=json.dumps(body, separators=(",", ":")).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    stop = trader.fields(price="0", quantity="1000000", side="SHORT")
    standby = rust_order(
        trader.wallet,
        stop,
        "STOP_MARKET",
        reduce_only=True,
        post_only=None,
        time_in_force=None,
        trigger="30000000000000",
    )
    assert "postOnly" not in standby and "timeInForce" not in standby
    response = trader.post_order(standby)
    assert response.status_code == 202, response.text
    assert shared_fake.orders[response.json()["orderHash"]]["type"] == "STOP_MARKET"


def test_a_sent_order_hash_must_match(trader: Session) -> None:
    fields = trader.fields(price="40000000000000", quantity="1000000")
    body = {**python_order(trader.wallet, fields), "orderHash": "0x" + crypto.order_hash(fields)}
    assert trader.post_order(body).status_code == 202
    wrong = {
        **python_order(trader.wallet, trader.fields(price="40000000000000", quantity="1000000")),
        "orderHash": "ab" * 32,
    }
    response = trader.post_order(wrong)
    assert response.status_code == 400 and response.json()["errorCode"] == "INVALID_ORDER_HASH"


SIGNED_CHANGES = {
    "symbol": "ETH-PERP",
    "priceE9": "40000100000000",
    "quantityE9": "2000000",
    "side": "SHORT",
    "leverageE9": "2000000000",
    "isIsolated": False,
    "salt": "12345",
    "expiresAtMillis": 1,
    "signedAtMillis": -1,
}


@pytest.mark.parametrize("name", list(SIGNED_CHANGES))
def test_an_order_whose_signed_field_changed_after_signing_is_refused(
    trader: Session, shared_fake: FakeBluefinPro, name: str
) -> None:
    fields = trader.fields(price="40000000000000", quantity="1000000", isolated=True)
    body = python_order(trader.wallet, fields)
    change = SIGNED_CHANGES[name]
    if name in ("expiresAtMillis", "signedAtMillis"):
        change = fields[name] + change
    body["signedFields"] = {**fields, name: change}
    before = len(shared_fake.orders)
    response = trader.post_order(body)
    assert response.status_code == 401, response.text
    assert response.json()["errorCode"] == "INVALID_SIGNATURE"
    assert len(shared_fake.orders) == before
    assert shared_fake.refusals[-1][0] == "/api/v1/trade/orders"
    assert shared_fake.order_requests[-1]["signedFields"][name] == change  # recorded although refused


def test_a_changed_signature_byte_is_refused(trader: Session) -> None:
    body = python_order(trader.wallet, trader.fields(price="40000000000000", quantity="1000000"))
    raw = bytearray(base64.b64decode(body["signature"]))
    raw[5] ^= 0x01
    body["signature"] = base64.b64encode(bytes(raw)).decode()
    assert trader.post_order(body).status_code == 401


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("priceE9", "040000000000000"),
        ("priceE9", "4e13"),
        ("quantityE9", "-1000000"),
        ("salt", " 1"),
        ("accountAddress", "UPPER"),
        ("idsId", "0x1234"),
        ("isIsolated", "false"),
        ("expiresAtMillis", "1"),
    ],
)
def test_non_canonical_signed_values_are_refused_before_the_signature(
    trader: Session, name: str, value: str
) -> None:
    fields = trader.fields(price="40000000000000", quantity="1000000")
    fields[name] = trader.wallet.address.upper().replace("0X", "0x") if value == "UPPER" else value
    response = trader.post_order(python_order(trader.wallet, fields))
    assert response.status_code == 400, response.text
    assert name in response.json()["message"]


def test_the_signer_must_be_the_account_and_the_ids_the_exchanges(trader: Session) -> None:
    other = Wallet.random()
    fields = trader.fields(price="40000000000000", quantity="1000000")
    response = trader.post_order(python_order(other, fields))  # signed by someone else
    assert response.status_code == 401 and "signer" in response.json()["message"]
    foreign = trader.fields(price="40000000000000", quantity="1000000")
    foreign["idsId"] = "0x" + "ab" * 32
    response = trader.post_order(python_order(trader.wallet, foreign))
    assert response.status_code == 400 and response.json()["errorCode"] == "INVALID_IDS_ID"


def test_leverage_and_margin_signatures_are_checked(trader: Session, shared_fake: FakeBluefinPro) -> None:
    good = leverage_request(trader.wallet, trader.ids, "ETH-PERP", "5000000000")
    assert trader.client.put("/api/v1/trade/leverage", json=good).status_code == 202
    bad = leverage_request(trader.wallet, trader.ids, "ETH-PERP", "5000000000")
    bad["signedFields"]["leverageE9"] = "6000000000"
    assert trader.client.put("/api/v1/trade/leverage", json=bad).status_code == 401
    assert shared_fake.account(trader.wallet.address)["leverage"]["ETH-PERP"] == 5.0
    margin = margin_request(trader.wallet, trader.ids, "ETH-PERP", True, "1000000000")
    margin["signedFields"]["operation"] = "SUBTRACT"
    assert trader.client.put("/api/v1/trade/adjustIsolatedMargin", json=margin).status_code == 401
