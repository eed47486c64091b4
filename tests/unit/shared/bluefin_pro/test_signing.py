"""Signing as Bluefin Pro verifies it: keys and addresses, personal messages, login, orders, the order hash.

The vectors come from outside this project: Sui key/address pairs published by other Sui code, and Bluefin's
SDK test key with the order values of its Rust unit test (signatures checked with an independent computation
of the Sui personal-message digest)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from hashlib import blake2b

import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.bluefin_pro.signing import (
    BadKey,
    SignedOrderFields,
    SuiKey,
    leverage_message,
    login_body,
    margin_message,
    order_hash,
    personal_message_digest,
    sign_fields,
    sign_personal_message,
    signed_fields_json,
    uleb128,
    verify_personal_message,
)

SDK_KEY = "3427d19dcf5781f0874c36c78aec22c03acda435d69efcbf249e8821793567a1"
SDK_ADDRESS = "0x9b11fafc580f23932f379d99ab6cc4c638e85ba4c252fc909296f3f9e6cea786"
IDS = "0x8e78225d72b1d7b1f63e5e9f88f09b12ca66c84e2fc8b91fc10f6a0c51230615"
ORDER = SignedOrderFields(
    ids_id=IDS, account=SDK_ADDRESS, symbol="ETH-PERP", price_e9=3_500_000_000_000, quantity_e9=100_000_000,
    leverage_e9=0, side="LONG", is_isolated=False, expires_at_ms=2_037_603_360_000, salt=1_725_930_601_205,
    signed_at_ms=1_725_931_543_867,
)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (SDK_KEY, SDK_ADDRESS),
        ("0x" + SDK_KEY.upper(), SDK_ADDRESS),
        # a Sui key pair published with its address (hex key)
        ("E4FD0E90D32CB98DC6AD64516A421E8C2731870217CDBA64203CEB158A866304",
         "0xa402ce953053607dffcdfec89406c579c8d8ddb9c90e01b7aa28f5f1538ac289"),
        # a suiprivkey1 key published with the address Sui derives from it
        ("suiprivkey1qp8hzyxp3wgpygvxthkwktw07m3mnagyyexzuvtj3gv9qh57tl4kc7xa9hd",
         "0x2011252062eb033208b51d113b029a3741156a934fab338abdc2c4dc37c041aa"),
    ],
)  # fmt: skip
def test_keys_give_the_addresses_sui_derives(text: str, address: str) -> None:
    key = SuiKey.parse(text)
    assert key.address == address
    assert repr(key) == f"SuiKey(address='{address}')"  # never the secret


def test_a_suiprivkey_is_the_flag_and_the_32_bytes() -> None:
    # a published test key: flag 0 (ed25519) then 32 bytes of 0x41
    key = SuiKey.parse("suiprivkey1qpq5zs2pg9q5zs2pg9q5zs2pg9q5zs2pg9q5zs2pg9q5zs2pg9q5z5u89z0")
    assert key.address == SuiKey.from_seed(bytes([0x41] * 32)).address


@pytest.mark.parametrize(
    "text",
    [
        "", "0x1234", "zz" * 32,
        "suiprivkey1qpq5zs2pg9q5zs2pg9q5zs2pg9q5zs2pg9q5zs2pg9q5zs2pg9q5z5u89z1",  # checksum broken
        # a secp256k1 key (flag 1): refused, only ed25519 is supported
        "suiprivkey1qytkckkxjg4n8mstmdkwg90x6vw2gp5kv6njsys9xgwpva49nyaqctexq74",
    ],
)  # fmt: skip
def test_bad_keys_are_refused_without_quoting_them(text: str) -> None:
    with pytest.raises(BadKey) as caught:
        SuiKey.parse(text)
    assert not text or text not in str(caught.value)


def test_uleb128_lengths() -> None:
    assert uleb128(0) == b"\x00" and uleb128(127) == b"\x7f"
    assert uleb128(128) == b"\x80\x01" and uleb128(300) == b"\xac\x02"


def _independent_digest(message: bytes) -> bytes:
    """Sui's personal message: BCS vector<u8> (ULEB128 length + bytes) after the intent 3,0,0, blake2b-256."""
    length, n = bytearray(), len(message)
    while True:
        byte, n = n & 0x7F, n >> 7
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return blake2b(bytes([3, 0, 0]) + bytes(length) + message, digest_size=32).digest()


def test_order_signature_and_hash_match_bluefins_vectors() -> None:
    key = SuiKey.parse(SDK_KEY)
    message = ORDER.message()
    assert list(message) == [
        "type", "ids", "account", "market", "price", "quantity", "leverage", "side", "positionType",
        "expiration", "salt", "signedAt",
    ]  # fmt: skip
    text = signed_fields_json(message)
    assert text.startswith(b'{\n  "type": "Bluefin Pro Order",\n  "ids": "0x8e78')
    assert not text.endswith(b"\n") and b'"positionType": "CROSS"' in text
    signature = sign_fields(key, message)
    assert signature == (
        "ACNkmpp9TET2E8ncdER04WfnSFHiyqmVOxN4SmZr58qmuf1C9IrrIDVgAhL2+lJLBd3uLsEsg0QIjrZ7675WvwGYnjWQQik2"
        "Dfv1OpJ32zbUAfWXxMCmk6zChr9Dkmmlyw=="
    )
    raw = base64.b64decode(signature)
    assert raw[0] == 0 and len(raw) == 97
    nacl.signing.VerifyKey(raw[65:]).verify(_independent_digest(text), raw[1:65])
    # Bluefin's Rust SDK and contract: blake2b-256 of the BCS bytes (ULEB128 string lengths), lowercase hex
    assert order_hash(ORDER) == "d4a067bf76ed13fd0af798641ba697e69f46f224001f504aa7c66fd301b96df4"
    assert ORDER.order_hash() == order_hash(ORDER)


def test_login_signs_the_very_bytes_it_sends() -> None:
    key = SuiKey.parse(SDK_KEY)
    body = login_body(key.address, 1_725_931_543_867)
    assert json.loads(body) == {
        "accountAddress": SDK_ADDRESS,
        "signedAtMillis": 1_725_931_543_867,
        "audience": "api",
    }
    assert list(json.loads(body)) == ["accountAddress", "signedAtMillis", "audience"]
    signature = sign_personal_message(key, body)
    assert signature == (
        "ALyZ4XvKLxhJLsdSaMbE5bpoNgrfZyP22t71U5l79iLkZb3SQrPSDIBCqtipbqmQEsgDQqhyklToDwZSri6vVQyYnjWQQik2"
        "Dfv1OpJ32zbUAfWXxMCmk6zChr9Dkmmlyw=="
    )
    assert verify_personal_message(signature, body) == SDK_ADDRESS
    assert verify_personal_message(signature, body.replace(b"api", b"apj")) is None
    assert personal_message_digest(body) == _independent_digest(body)


def test_leverage_and_margin_messages_in_bluefins_field_order() -> None:
    lev = leverage_message(IDS, SDK_ADDRESS, "BTC-PERP", 3_000_000_000, 7, 1)
    assert list(lev) == ["type", "ids", "account", "market", "leverage", "salt", "signedAt"]
    assert lev["type"] == "Bluefin Pro Leverage Adjustment" and lev["leverage"] == "3000000000"
    margin = margin_message(IDS, SDK_ADDRESS, "BTC-PERP", True, 5, 7, 1)
    assert list(margin) == ["type", "ids", "account", "market", "add", "amount", "salt", "signedAt"]
    assert b'"add": true,' in signed_fields_json(margin)


def test_wire_fields_read_back_to_the_same_order() -> None:
    assert SignedOrderFields.from_wire(ORDER.wire()) == ORDER
    wire = ORDER.wire()
    assert wire["priceE9"] == "3500000000000" and wire["expiresAtMillis"] == 2_037_603_360_000


FIELDS = st.sampled_from(["price_e9", "quantity_e9", "leverage_e9", "expires_at_ms", "salt", "signed_at_ms"])


@given(field=FIELDS, delta=st.integers(min_value=1, max_value=10**6))
def test_any_change_of_a_signed_number_changes_the_hash_and_breaks_the_signature(
    field: str, delta: int
) -> None:
    key = SuiKey.parse(SDK_KEY)
    changed = replace(ORDER, **{field: getattr(ORDER, field) + delta})
    assert order_hash(changed) != order_hash(ORDER)
    signature = sign_fields(key, ORDER.message())
    assert verify_personal_message(signature, signed_fields_json(changed.message())) is None
    assert verify_personal_message(signature, signed_fields_json(ORDER.message())) == SDK_ADDRESS
