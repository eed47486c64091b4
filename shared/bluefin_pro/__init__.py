"""Bluefin Pro, the API Bluefin runs today: our own client (signing, REST, streams, market specs).

Written from Bluefin's published OpenAPI specification (``../shared/specs/bluefin-pro``) and from reading how
its SDK signs; nothing of the SDK is installed or copied. ``shared.exchange.bluefin_pro`` (the Exchange port)
and ``shared.marketdata.bluefin_pro`` (the market feed) sit on top of this package.
"""
