"""Who may post to ``/webhook``, decided before the body is read: the sender's address (WEBHOOK_ALLOWED_IPS)
and, with WEBHOOK_REQUIRE_TV_CERT, TradingView's client certificate as nginx verified it.

nginx terminates TLS, verifies the client certificate against TV_CLIENT_CA_FILE and always sets
``X-Client-Verify`` and ``X-Client-Subject`` (a client cannot send its own: nginx overwrites them) and
``X-Real-IP``. Those headers are believed only from a proxy on this machine or the container network; a
request straight to the service port from elsewhere is judged by its own address and has no certificate.
nginx refuses the same requests first; this is the second lock on the door.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

TV_SUBJECT = {"CN": "TradingView Webhooks", "O": "TradingView, Inc."}
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_dn(text: str) -> dict[str, str]:
    """An RFC 2253/4514 distinguished name (what nginx's $ssl_client_s_dn gives) as attribute -> value;
    escaped commas stay inside their value. An attribute given twice makes the name unusable ({})."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",+":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    result: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        key = key.strip().upper()
        if not sep or key in result:
            return {}
        result[key] = value.strip()
    return result


def is_tradingview_subject(subject: str) -> bool:
    names = parse_dn(subject)
    return all(names.get(key) == value for key, value in TV_SUBJECT.items())


def _trusted_proxy(address: Address) -> bool:
    return address.is_loopback or address.is_private


class SenderGate:
    def __init__(self, allowed: Iterable[str], require_tv_cert: bool) -> None:
        self.allowed = [ipaddress.ip_network(n) for n in allowed]
        self.require_tv_cert = require_tv_cert

    def client_address(self, peer: str, headers: Mapping[str, str]) -> str:
        """The sender's address: nginx's X-Real-IP when the request came through our own proxy (``peer``, the
        address of the connection; ``headers`` looked up case-insensitively)."""
        forwarded = headers.get("X-Real-IP", "").strip()
        address = _address(peer)
        if address is not None and _trusted_proxy(address) and _address(forwarded) is not None:
            return forwarded
        return peer

    def refusal(self, peer: str, headers: Mapping[str, str], client: str) -> str:
        """Why this request may not post an alert ("" when it may)."""
        address = _address(client)
        if self.allowed and (address is None or not any(address in net for net in self.allowed)):
            return "sender address not in WEBHOOK_ALLOWED_IPS"
        if self.require_tv_cert:
            proxy = _address(peer)
            if proxy is None or not _trusted_proxy(proxy):
                return "TradingView's client certificate is required (HTTPS through nginx)"
            if headers.get("X-Client-Verify") != "SUCCESS":
                return "TradingView's client certificate is required"
            if not is_tradingview_subject(headers.get("X-Client-Subject", "")):
                return "client certificate is not TradingView's"
        return ""


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
