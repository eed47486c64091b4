"""Where Bluefin Pro lives: ``SUI_PROD`` (mainnet), ``SUI_STAGING`` (testnet) or one base URL for every host
(a local fake, a private gateway)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ConfigError

ENVIRONMENTS = {"SUI_PROD": "sui-prod", "SUI_STAGING": "sui-staging"}


@dataclass(frozen=True)
class ProHosts:
    name: str  # SUI_PROD, SUI_STAGING or the URL
    auth: str  # login and token refresh
    data: str  # exchange and account data
    trade: str  # orders, cancels, leverage, margin
    stream: str  # ws(s)://... : /ws/market and /ws/account

    @property
    def market_stream(self) -> str:
        return f"{self.stream}/ws/market"

    @property
    def account_stream(self) -> str:
        return f"{self.stream}/ws/account"

    @property
    def is_mainnet(self) -> bool:
        return self.name == "SUI_PROD"


def pro_hosts(network: str) -> ProHosts:
    """``SUI_PROD``, ``SUI_STAGING`` or an http(s) URL serving every path (Pro's paths do not collide)."""
    env = ENVIRONMENTS.get(network.upper())
    if env is not None:
        return ProHosts(
            network.upper(),
            f"https://auth.api.{env}.bluefin.io",
            f"https://api.{env}.bluefin.io",
            f"https://trade.api.{env}.bluefin.io",
            f"wss://stream.api.{env}.bluefin.io",
        )
    if network.startswith(("http://", "https://")):
        url = network.rstrip("/")
        stream = "ws://" + url.removeprefix("http://") if url.startswith("http://") else "wss://" + url[8:]
        return ProHosts(url, url, url, url, stream)
    raise ConfigError([f"BLUEFIN_NETWORK: {network!r} is not SUI_PROD, SUI_STAGING or an http(s) URL"])
