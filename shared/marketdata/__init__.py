"""Market data: feeds that produce candles for the engine."""
