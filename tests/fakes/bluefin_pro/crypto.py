"""The fake's own verification of Bluefin Pro signatures and order hashes (independent of the platform's
client code, so a mistake there cannot be mirrored here).

- Login v1: ed25519 over blake2b-256(raw body); v2: over the Sui personal-message digest of the raw body,
  blake2b-256(03 00 00 || ULEB128(len) || body).
- Orders, leverage and margin requests: the 2-space pretty JSON rebuilt from ``signedFields`` (fixed key
  order, every value a JSON string except bools), signed as a Sui personal message.
- Wire signature: base64(flag 0x00 || 64-byte signature || 32-byte public key); the signer's address is
  0x + hex(blake2b-256(0x00 || public key)).
- Order hash: lowercase hex (no 0x) of blake2b-256 of the standard BCS of the order (ULEB128-prefixed
  strings, little-endian u64), as Bluefin's Rust SDK and the on-chain contract compute it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

ED25519_FLAG = 0
SIGNATURE_LENGTH = 1 + 64 + 32
U64_MAX = 2**64 - 1
CANONICAL_UINT = re.compile(r"(0|[1-9][0-9]*)")
ADDRESS = re.compile(r"0x[0-9a-f]{64}")

ORDER_TYPE = "Bluefin Pro Order"
LEVERAGE_TYPE = "Bluefin Pro Leverage Adjustment"
MARGIN_TYPE = "Bluefin Pro Margin Adjustment"


class SignatureError(ValueError):
    """The signature is malformed or does not verify (``malformed`` tells which)."""

    def __init__(self, message: str, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def blake2b256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


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
    """What a Sui wallet signs for ``message``: intent 03 00 00, then the BCS vector<u8> of the bytes."""
    return blake2b256(b"\x03\x00\x00" + uleb128(len(message)) + message)


def address_of(public_key: bytes) -> str:
    return "0x" + blake2b256(bytes([ED25519_FLAG]) + public_key).hex()


@dataclass(frozen=True)
class WireSignature:
    signature: bytes
    public_key: bytes

    @property
    def address(self) -> str:
        return address_of(self.public_key)


def decode_signature(text: str, urlsafe_allowed: bool = False) -> WireSignature:
    """Split a wire signature (standard base64; URL-safe too where ``urlsafe_allowed``)."""
    if urlsafe_allowed:
        text = text.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise SignatureError("signature is not base64", malformed=True) from exc
    if len(raw) != SIGNATURE_LENGTH:
        raise SignatureError(f"signature is {len(raw)} bytes, expected {SIGNATURE_LENGTH}", malformed=True)
    if raw[0] != ED25519_FLAG:
        raise SignatureError(f"unsupported signature scheme flag {raw[0]}", malformed=True)
    return WireSignature(raw[1:65], raw[65:])


def verify_digest(wire: WireSignature, digest: bytes) -> None:
    try:
        VerifyKey(wire.public_key).verify(digest, wire.signature)
    except (BadSignatureError, ValueError) as exc:
        raise SignatureError("signature does not verify") from exc


def verify_login(body: bytes, header: str, v2: bool) -> str:
    """The signer's address if ``header`` signs the raw login ``body`` (v1 or v2), else SignatureError."""
    wire = decode_signature(header, urlsafe_allowed=not v2)
    digest = personal_message_digest(body) if v2 else blake2b256(body)
    verify_digest(wire, digest)
    return wire.address


def signed_message(fields: list[tuple[str, str | bool]]) -> bytes:
    """The pretty JSON Bluefin signs: 2-space indent, one key per line, strings quoted, bools bare."""
    lines = []
    for key, value in fields:
        rendered = ("true" if value else "false") if isinstance(value, bool) else f'"{value}"'
        lines.append(f'  "{key}": {rendered}')
    return ("{\n" + ",\n".join(lines) + "\n}").encode()


def verify_signed_request(fields: list[tuple[str, str | bool]], signature: str) -> str:
    """The signer's address if ``signature`` (standard base64) signs the rebuilt message of ``fields``."""
    wire = decode_signature(signature)
    verify_digest(wire, personal_message_digest(signed_message(fields)))
    return wire.address


def order_fields(signed: dict[str, object]) -> list[tuple[str, str | bool]]:
    """The order's signed message fields, in Bluefin's order, from a validated ``signedFields``."""
    return [
        ("type", ORDER_TYPE),
        ("ids", str(signed["idsId"])),
        ("account", str(signed["accountAddress"])),
        ("market", str(signed["symbol"])),
        ("price", str(signed["priceE9"])),
        ("quantity", str(signed["quantityE9"])),
        ("leverage", str(signed["leverageE9"])),
        ("side", str(signed["side"])),
        ("positionType", "ISOLATED" if signed["isIsolated"] else "CROSS"),
        ("expiration", str(signed["expiresAtMillis"])),
        ("salt", str(signed["salt"])),
        ("signedAt", str(signed["signedAtMillis"])),
    ]


def leverage_fields(signed: dict[str, object]) -> list[tuple[str, str | bool]]:
    return [
        ("type", LEVERAGE_TYPE),
        ("ids", str(signed["idsId"])),
        ("account", str(signed["accountAddress"])),
        ("market", str(signed["symbol"])),
        ("leverage", str(signed["leverageE9"])),
        ("salt", str(signed["salt"])),
        ("signedAt", str(signed["signedAtMillis"])),
    ]


def margin_fields(signed: dict[str, object]) -> list[tuple[str, str | bool]]:
    return [
        ("type", MARGIN_TYPE),
        ("ids", str(signed["idsId"])),
        ("account", str(signed["accountAddress"])),
        ("market", str(signed["symbol"])),
        ("add", signed["operation"] == "ADD"),
        ("amount", str(signed["quantityE9"])),
        ("salt", str(signed["salt"])),
        ("signedAt", str(signed["signedAtMillis"])),
    ]


def _bcs_str(text: str) -> bytes:
    data = text.encode()
    return uleb128(len(data)) + data


def _bcs_u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def order_hash(signed: dict[str, object]) -> str:
    """blake2b-256 of the standard BCS of the order, lowercase hex without 0x."""
    payload = (
        bytes.fromhex(str(signed["idsId"])[2:])
        + bytes.fromhex(str(signed["accountAddress"])[2:])
        + _bcs_str(str(signed["symbol"]))
        + _bcs_u64(int(str(signed["priceE9"])))
        + _bcs_u64(int(str(signed["quantityE9"])))
        + _bcs_u64(int(str(signed["leverageE9"])))
        + _bcs_str(str(signed["side"]))
        + _bcs_str("ISOLATED" if signed["isIsolated"] else "CROSS")
        + _bcs_u64(int(str(signed["expiresAtMillis"])))
        + _bcs_u64(int(str(signed["salt"])))
        + _bcs_u64(int(str(signed["signedAtMillis"])))
    )
    return blake2b256(payload).hex()


def is_canonical_uint(value: object) -> bool:
    """A JSON string holding a decimal u64 without sign, spaces or leading zeros."""
    return isinstance(value, str) and CANONICAL_UINT.fullmatch(value) is not None and int(value) <= U64_MAX


def is_address(value: object) -> bool:
    return isinstance(value, str) and ADDRESS.fullmatch(value) is not None
