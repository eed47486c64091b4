"""Signatures as Bluefin Pro verifies them, and the order hash as Bluefin computes it.

- Keys: a Sui private key in Bech32 (``suiprivkey1...``: flag byte 0 for ed25519, then 32 bytes) or 32 bytes
  of hex (``0x`` optional). The account address is blake2b-256(flag 0 || public key), in hex with ``0x``.
- Requests (orders, leverage, margin) are signed as a Sui *personal message*: the signed fields as
  pretty-printed JSON (2-space indent, fixed key order, numbers as decimal strings), BCS-serialised as
  ``vector<u8>`` (ULEB128 length, then the bytes), prefixed with the intent bytes 3, 0, 0, hashed with
  blake2b-256 and signed with ed25519. The wire form is base64 of flag (0) || 64-byte signature || 32-byte
  public key.
- Login (``POST /auth/v2/token``) signs the JSON body itself, the very bytes sent, as a personal message;
  the signature goes in the ``payloadSignature`` header (Bluefin verifies it over the raw body).
- The order hash: blake2b-256 of the BCS bytes of the signed order fields (addresses as 32 bytes, strings with
  a ULEB128 length, numbers as little-endian u64), in lowercase hex: what Bluefin's contract computes.

A ``SuiKey`` never shows its secret: its ``repr`` is the address, and parse errors do not quote the input.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

import bech32
import nacl.exceptions
import nacl.signing

from shared.errors import InvalidInput

SUI_PRIVATE_KEY_PREFIX = "suiprivkey"
ED25519_FLAG = 0
PERSONAL_MESSAGE_INTENT = bytes([3, 0, 0])
ORDER_TYPE = "Bluefin Pro Order"
LEVERAGE_TYPE = "Bluefin Pro Leverage Adjustment"
MARGIN_TYPE = "Bluefin Pro Margin Adjustment"


class BadKey(InvalidInput):
    """The private key cannot be read (the message never contains the key)."""

    FIELD = "BLUEFIN_PRIVATE_KEY"


def _blake2b_256(data: bytes) -> bytes:
    return blake2b(data, digest_size=32).digest()


def sui_address(public_key: bytes) -> str:
    """The Sui address of an ed25519 public key."""
    return "0x" + _blake2b_256(bytes([ED25519_FLAG]) + public_key).hex()


@dataclass(frozen=True)
class SuiKey:
    """An ed25519 key pair and the Sui address it owns."""

    _signing: nacl.signing.SigningKey = field(repr=False)
    public_key: bytes = field(repr=False)
    address: str

    @classmethod
    def from_seed(cls, seed: bytes) -> SuiKey:
        if len(seed) != 32:
            raise BadKey("an ed25519 private key has 32 bytes")
        signing = nacl.signing.SigningKey(seed)
        public = bytes(signing.verify_key)
        return cls(signing, public, sui_address(public))

    @classmethod
    def parse(cls, text: str) -> SuiKey:
        """``suiprivkey1...`` (ed25519 only) or 64 hex digits with or without ``0x``."""
        cleaned = text.strip()
        if cleaned.lower().startswith(SUI_PRIVATE_KEY_PREFIX):
            hrp, words = bech32.bech32_decode(cleaned.lower())
            data = bech32.convertbits(words, 5, 8, False) if words is not None else None
            if hrp != SUI_PRIVATE_KEY_PREFIX or data is None or len(data) != 33:
                raise BadKey("not a valid suiprivkey1... key (bad checksum or length)")
            if data[0] != ED25519_FLAG:
                raise BadKey("only ed25519 Sui keys are supported (the key's scheme flag is not 0)")
            return cls.from_seed(bytes(data[1:]))
        digits = cleaned.removeprefix("0x").removeprefix("0X")
        if len(digits) != 64:
            raise BadKey("must be a suiprivkey1... key or 32 bytes of hex (64 hex digits)")
        try:
            seed = bytes.fromhex(digits)
        except ValueError:
            raise BadKey("must be a suiprivkey1... key or 32 bytes of hex (64 hex digits)") from None
        return cls.from_seed(seed)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._signing.sign(message).signature)

    def serialized(self, signature: bytes) -> bytes:
        """flag || signature || public key: how Sui carries a signature with the key that made it."""
        return bytes([ED25519_FLAG]) + signature + self.public_key


# --- BCS ----------------------------------------------------------------------------------------------------
def uleb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def personal_message_digest(message: bytes) -> bytes:
    """What an ed25519 key signs for a Sui personal message."""
    return _blake2b_256(PERSONAL_MESSAGE_INTENT + uleb128(len(message)) + message)


def signed_fields_json(fields: dict[str, Any]) -> bytes:
    """The signed fields as Bluefin Pro reads them: JSON, 2-space indent, keys in the given order."""
    return json.dumps(fields, indent=2).encode()


def sign_fields(key: SuiKey, fields: dict[str, Any]) -> str:
    """A request's ``signature``: the personal-message signature of its signed fields' JSON."""
    return sign_personal_message(key, signed_fields_json(fields))


def _verified(raw: bytes, digest: bytes) -> str | None:
    if len(raw) != 97 or raw[0] != ED25519_FLAG:
        return None
    signature, public = raw[1:65], raw[65:]
    try:
        nacl.signing.VerifyKey(public).verify(digest, signature)
    except (nacl.exceptions.BadSignatureError, ValueError):
        return None
    return sui_address(public)


# --- login --------------------------------------------------------------------------------------------------
def login_body(address: str, signed_at_ms: int, audience: str = "api") -> bytes:
    """The body of ``POST /auth/v2/token`` (compact JSON): exactly the bytes the signature covers."""
    fields = {"accountAddress": address, "signedAtMillis": signed_at_ms, "audience": audience}
    return json.dumps(fields, separators=(",", ":")).encode()


def sign_personal_message(key: SuiKey, message: bytes) -> str:
    """base64 of flag || ed25519(personal-message digest of ``message``) || public key."""
    return base64.b64encode(key.serialized(key.sign(personal_message_digest(message)))).decode()


def verify_personal_message(signature: str, message: bytes) -> str | None:
    """The address whose key signed ``message`` as a personal message, or None if it does not verify."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return None
    return _verified(raw, personal_message_digest(message))


# --- orders, leverage, margin -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignedOrderFields:
    """What an order signs (``CreateOrderRequestSignedFields``); numbers in e9 fixed point."""

    ids_id: str
    account: str
    symbol: str
    price_e9: int
    quantity_e9: int
    leverage_e9: int
    side: str  # LONG | SHORT
    is_isolated: bool
    expires_at_ms: int
    salt: int
    signed_at_ms: int

    def message(self) -> dict[str, Any]:
        return {
            "type": ORDER_TYPE, "ids": self.ids_id, "account": self.account, "market": self.symbol,
            "price": str(self.price_e9), "quantity": str(self.quantity_e9), "leverage": str(self.leverage_e9),
            "side": self.side, "positionType": "ISOLATED" if self.is_isolated else "CROSS",
            "expiration": str(self.expires_at_ms), "salt": str(self.salt), "signedAt": str(self.signed_at_ms),
        }  # fmt: skip

    def wire(self) -> dict[str, Any]:
        """As ``signedFields`` in the request body."""
        return {
            "symbol": self.symbol, "accountAddress": self.account, "priceE9": str(self.price_e9),
            "quantityE9": str(self.quantity_e9), "side": self.side, "leverageE9": str(self.leverage_e9),
            "isIsolated": self.is_isolated, "salt": str(self.salt), "idsId": self.ids_id,
            "expiresAtMillis": self.expires_at_ms, "signedAtMillis": self.signed_at_ms,
        }  # fmt: skip

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> SignedOrderFields:
        """Read ``signedFields`` back (the fake exchange does): raises KeyError/ValueError when malformed."""
        return cls(
            ids_id=str(wire["idsId"]), account=str(wire["accountAddress"]), symbol=str(wire["symbol"]),
            price_e9=int(wire["priceE9"]), quantity_e9=int(wire["quantityE9"]),
            leverage_e9=int(wire["leverageE9"]), side=str(wire["side"]), is_isolated=bool(wire["isIsolated"]),
            expires_at_ms=int(wire["expiresAtMillis"]), salt=int(wire["salt"]),
            signed_at_ms=int(wire["signedAtMillis"]),
        )  # fmt: skip

    def order_hash(self) -> str:
        return order_hash(self)


def _bcs_address(address: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) not in (16, 32):
        raise ValueError(f"an address has 16 or 32 bytes, not {len(raw)}")
    return raw


def _bcs_str(text: str) -> bytes:
    encoded = text.encode()
    return uleb128(len(encoded)) + encoded


def order_hash(fields: SignedOrderFields) -> str:
    """The order hash Bluefin computes (cancels refer to orders by it)."""
    u64 = struct.Struct("<Q").pack
    data = b"".join(
        (
            _bcs_address(fields.ids_id), _bcs_address(fields.account), _bcs_str(fields.symbol),
            u64(fields.price_e9), u64(fields.quantity_e9), u64(fields.leverage_e9), _bcs_str(fields.side),
            _bcs_str("ISOLATED" if fields.is_isolated else "CROSS"), u64(fields.expires_at_ms),
            u64(fields.salt), u64(fields.signed_at_ms),
        )
    )  # fmt: skip
    return blake2b(data, digest_size=32).hexdigest()


def leverage_message(
    ids_id: str, account: str, symbol: str, leverage_e9: int, salt: int, signed_at_ms: int
) -> dict[str, Any]:
    return {
        "type": LEVERAGE_TYPE, "ids": ids_id, "account": account, "market": symbol,
        "leverage": str(leverage_e9), "salt": str(salt), "signedAt": str(signed_at_ms),
    }  # fmt: skip


def margin_message(
    ids_id: str, account: str, symbol: str, add: bool, amount_e9: int, salt: int, signed_at_ms: int
) -> dict[str, Any]:
    return {
        "type": MARGIN_TYPE, "ids": ids_id, "account": account, "market": symbol, "add": add,
        "amount": str(amount_e9), "salt": str(salt), "signedAt": str(signed_at_ms),
    }  # fmt: skip
