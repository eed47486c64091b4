"""An example strategy: buy pullbacks to EMA20 in an uptrend, sell rallies to it in a downtrend.

Use it with STRATEGIES=examples/strategies/ema_pullback.py:EmaPullback, and check it first with
``bluefinai strategy check examples/strategies/ema_pullback.py:EmaPullback``.
"""

import numpy as np
import pandas as pd

from agent.strategies.api import FloatParam, IntParam, Strategy


class EmaPullback(Strategy):
    name = "ema_pullback"
    timeframe = "15m"
    warmup = 30  # the signal of a candle reads at most the 30 candles up to it
    params = {
        "trend_adx": FloatParam(20.0, low=10.0, high=40.0),
        "stop_atr": FloatParam(1.5, low=0.5, high=5.0),
        "hold": IntParam(12, low=2, high=28),
    }

    def indicators(self, frame: pd.DataFrame) -> pd.DataFrame:
        # the platform's columns (ema_20, ema_50, adx, atr, ...) are there already; add our own
        frame["touched"] = (frame["low"] <= frame["ema_20"]) & (frame["high"] >= frame["ema_20"])
        return frame

    def signals(self, frame: pd.DataFrame) -> pd.DataFrame:
        up = (frame["ema_20"] > frame["ema_50"]) & (frame["adx"] >= self.p["trend_adx"])
        down = (frame["ema_20"] < frame["ema_50"]) & (frame["adx"] >= self.p["trend_adx"])
        touched = frame["touched"].fillna(False).astype(bool)
        entry_long = (up & touched & (frame["close"] > frame["ema_20"])).fillna(False)
        entry_short = (down & touched & (frame["close"] < frame["ema_20"])).fillna(False)
        risk = (frame["atr"] * self.p["stop_atr"]).where(frame["atr"] > 0)
        hold = int(self.p["hold"])
        return pd.DataFrame(
            {
                "entry_long": entry_long.astype(bool),
                "entry_short": entry_short.astype(bool),
                # leave when the trend is gone: EMA20 back through EMA50
                "exit_long": (~up & up.shift(1, fill_value=False)).astype(bool),
                "exit_short": (~down & down.shift(1, fill_value=False)).astype(bool),
                "stop_loss": np.where(
                    entry_long, frame["close"] - risk, np.where(entry_short, frame["close"] + risk, np.nan)
                ),
                "take_profit": np.where(
                    entry_long,
                    frame["close"] + 2 * risk,
                    np.where(entry_short, frame["close"] - 2 * risk, np.nan),
                ),
                # more confident the longer the trend has held (over the last `hold` candles)
                "confidence": (up | down).astype(float).rolling(hold).mean().clip(0, 1).to_numpy(),
            },
            index=frame.index,
        )
