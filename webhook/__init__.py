"""The webhook service: TradingView alerts in, normalised signals out (never trades)."""
