"""Backtest reports over the real month of BTC candles, written without running a backtest: trades every
few hours on the real prices (long when the hour's EMA 20 is above EMA 50, short otherwise), the equity
stepping with their pnl; and ``write_runs``: a BACKTEST_DIR of two backtests and one optimisation (a
hand-written optimize.json, as the optimiser writes it, with its best trial's report in best/). Shared by
the report, API and dashboard tests."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from agent.analytics.performance import TradeRecord, compute_metrics, equity_from_trades
from agent.analytics.vetoes import VetoSummary
from agent.backtest.report import ReportFiles, write_report
from shared import indicators
from shared.marketdata.feeds import load_candle_csv

REAL_CANDLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"
REASONS = ("take_profit", "stop_loss", "signal_reversed", "trailing_stop")


@cache
def _real_month() -> pd.DataFrame:
    raw = load_candle_csv(REAL_CANDLES)
    stamps = pd.DatetimeIndex(raw["timestamp"])
    index = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
    return raw[["open", "high", "low", "close", "volume"]].set_axis(index).astype(float)


def month_candles(days: int = 31) -> pd.DataFrame:
    return _real_month().iloc[: days * 1440].copy()


def month_trades(candles: pd.DataFrame, every_h: int = 18, held_h: int = 5) -> list[TradeRecord]:
    hourly = candles["close"].resample("1h").last().dropna()
    lines = indicators.compute(
        pd.DataFrame({"open": hourly, "high": hourly, "low": hourly, "close": hourly, "volume": 1.0})
    )
    trades = []
    for number, opened in enumerate(hourly.index[60::every_h]):
        closed = opened + timedelta(hours=held_h)
        if closed > candles.index[-1]:
            break
        long = bool(lines.loc[opened, "ema_20"] > lines.loc[opened, "ema_50"])
        entry, exit_ = float(candles.loc[opened, "close"]), float(candles.loc[closed, "close"])
        quantity = 0.05
        fees = 0.0005 * quantity * (entry + exit_)
        pnl = (exit_ - entry if long else entry - exit_) * quantity - fees
        trades.append(
            TradeRecord("BTC-PERP", "BUY" if long else "SELL", quantity, entry, exit_, pnl, fees,
                        opened.to_pydatetime(), closed.to_pydatetime(), REASONS[number % len(REASONS)],
                        "internal:ema_cross", "rules", pnl / 40.0, 40.0)
        )  # fmt: skip
    return trades


def write_month_report(
    out: Path, title: str = "Backtest BTC-PERP", days: int = 31, every_h: int = 18, held_h: int = 5
) -> tuple[ReportFiles, Any]:
    candles = month_candles(days)
    trades = month_trades(candles, every_h, held_h)
    equity = equity_from_trades(trades, 10_000.0)
    metrics = compute_metrics(equity, trades, starting_equity=10_000.0, fees_paid=sum(t.fees for t in trades))
    vetoes = VetoSummary(by_rule={"reward_risk": 7, "confidence": 3})
    settings = {"RISK_TOLERANCE": "moderate", "STARTING_EQUITY": 10_000.0, "INTERNAL_SIGNALS": "ema_cross",
                "RISK_POLICY": {"max_position_size": 0.5, "risk_per_trade": 0.01}, "DATA": {"BTC-PERP": "btc.csv"},
                "END": None}  # fmt: skip
    files = write_report(out, metrics, equity, trades, prices=candles["close"].rename("BTC-PERP"), title=title,
                         settings=settings, vetoes=vetoes, candles={"BTC-PERP": candles})  # fmt: skip
    return files, json.loads(files.report_json.read_text())


OPTIMIZE = {
    "kind": "optimize",
    "study": "ema_cross-2022-01",
    "objective": "sharpe",
    "direction": "maximize",
    "n_trials": 3,
    "best": {"number": 2, "params": {"fast": 12, "slow": 48}, "value": 1.87,
             "command": "bluefinai backtest --strategy ema_cross --set FAST=12 --set SLOW=48"},
    "trials": [
        {"number": 0, "state": "COMPLETE", "value": 0.42, "params": {"fast": 20, "slow": 50}},
        {"number": 1, "state": "PRUNED", "value": None, "params": {"fast": 8, "slow": 30}},
        {"number": 2, "state": "COMPLETE", "value": 1.87, "params": {"fast": 12, "slow": 48}},
    ],
    "folds": [
        {"fold": 1, "in_sample": 2.1, "out_of_sample": 0.3, "train": ["2022-01-01", "2022-01-15"],
         "test": ["2022-01-15", "2022-01-22"]},
        {"fold": 2, "in_sample": 1.9, "out_of_sample": -0.4, "train": ["2022-01-08", "2022-01-22"],
         "test": ["2022-01-22", "2022-01-29"]},
    ],
    "overfitting_warning": "out-of-sample sharpe is far below in-sample (0.3 vs 2.1, -0.4 vs 1.9): overfit",
}  # fmt: skip
RUNS = ("older-ema", "newer-ema", "opt-ema")  # oldest first


def write_runs(root: Path, days: int = 4) -> dict[str, Any]:
    """Two backtests (``older-ema`` every 6 h, ``newer-ema`` every 4 h) and the optimisation ``opt-ema``,
    written a minute apart in that order; their report.json by name (the optimisation's: best/)."""
    reports = {}
    _, reports["older-ema"] = write_month_report(
        root / "older-ema", "Backtest older", days, every_h=6, held_h=3
    )
    _, reports["newer-ema"] = write_month_report(
        root / "newer-ema", "Backtest newer", days, every_h=4, held_h=2
    )
    _, reports["opt-ema"] = write_month_report(
        root / "opt-ema" / "best", "Best trial", days, every_h=5, held_h=2
    )
    (root / "opt-ema" / "optimize.json").write_text(json.dumps(OPTIMIZE, indent=2))
    for age, (name, file) in enumerate(
        zip(RUNS, ("report.json", "report.json", "optimize.json"), strict=True)
    ):
        stamp = 1_700_000_000 + 60 * age
        os.utime(root / name / file, (stamp, stamp))
    return reports
