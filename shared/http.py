"""HTTP helpers shared by the Flask services: bearer-token check and JSON error bodies."""

from __future__ import annotations

import hmac

from flask import Request


def bearer_token_ok(request: Request, expected: str) -> bool:
    """Constant-time check of ``Authorization: Bearer <token>``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or not expected:
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())
