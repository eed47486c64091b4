"""Backtests with a funding-rate series and mark prices (issue 15): each rate is settled at its own time on
the mark, stops and liquidations trigger on the mark, the report says which price was used, and skipping
quiet candles in bulk changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agent.backtest.run import BacktestRequest, run_backtest
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES

ROWS = 6_000


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("series")
    real = load_candle_csv(REAL_CANDLES).iloc[:ROWS]
    data = folder / "btc.csv"
    real.assign(timestamp=real["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(data, index=False)
    # mark candles without the last price's wicks: high/low within the body plus 2 bps
    body_high = real[["open", "close"]].max(axis=1) * 1.0002
    body_low = real[["open", "close"]].min(axis=1) * 0.9998
    mark = real.assign(high=np.minimum(real["high"], body_high), low=np.maximum(real["low"], body_low))
    mark_path = folder / "btc-mark.parquet"
    mark.to_parquet(mark_path, index=False)
    # funding at half past every hour, alternating +0.05 % / -0.02 % (freqtrade layout: open is the rate)
    times = pd.date_range(
        real["timestamp"].iloc[0].ceil("h") + pd.Timedelta(minutes=30), periods=100, freq="h"
    )
    rates = np.where(np.arange(100) % 2 == 0, 0.0005, -0.0002)
    funding = pd.DataFrame(
        {"date": times, "open": rates, "high": 0.0, "low": 0.0, "close": 0.0, "volume": 0.0}
    )
    funding_path = folder / "BTC_USDC_USDC-1h-funding_rate.feather"
    funding.to_feather(funding_path)
    return {"data": data, "mark": mark_path, "funding": funding_path}


def request(files: dict[str, Path], fast: bool, **extra: dict[str, Path]) -> BacktestRequest:
    return BacktestRequest(
        {"BTC-PERP": files["data"]}, progress=False, fast_forward=fast,
        overrides={"internal_signals": "ema_cross", "internal_signal_timeframe": "5m", "kelly_fraction": 0},
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def test_funding_series_and_mark_in_a_backtest_same_with_and_without_fast_forward(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    extra = {"funding": {"BTC-PERP": files["funding"]}, "mark": {"BTC-PERP": files["mark"]}}
    fast = run_backtest(request(files, True, **extra), tmp_path / "fast")
    slow = run_backtest(request(files, False, **extra), tmp_path / "slow")
    assert len(fast.trades) >= 5
    assert [(t.opened_at, t.closed_at, t.exit_price, t.pnl) for t in fast.trades] == [
        (t.opened_at, t.closed_at, t.exit_price, t.pnl) for t in slow.trades
    ]
    assert fast.equity.equals(slow.equity)
    assert fast.metrics.funding_paid == slow.metrics.funding_paid != 0
    report = json.loads((tmp_path / "fast" / "report.json").read_text())
    assert report["settings"]["PRICE_BASIS"] == {"BTC-PERP": "mark"}
    assert report["settings"]["FUNDING_SERIES"] == {"BTC-PERP": files["funding"].name}
    assert "PRICE_BASIS" in (tmp_path / "fast" / "report.html").read_text()


def test_without_a_mark_the_report_says_last_price(tmp_path: Path, files: dict[str, Path]) -> None:
    result = run_backtest(request(files, True), tmp_path / "plain")
    assert result.settings["PRICE_BASIS"] == {"BTC-PERP": "last"} and result.settings["MARK_DATA"] is None
    assert result.metrics.funding_paid == 0  # no rate, no series


def test_funding_for_a_market_without_data_is_refused(files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="ETH-PERP is not a market"):
        run_backtest(request(files, True, funding={"ETH-PERP": files["funding"]}))


def test_a_stop_the_market_gaps_through_fills_at_the_open_in_a_backtest(tmp_path: Path) -> None:
    real = load_candle_csv(REAL_CANDLES).iloc[:1_000].reset_index(drop=True)
    entry_row, gap_row = 700, 710
    close = float(real.loc[entry_row, "close"])
    stop = round(close * 0.99, 1)
    gap_open = round(close * 0.98, 1)  # the candle opens 1 % below the stop: nothing traded at the stop
    rest = real.loc[gap_row:, ["open", "high", "low", "close"]] * (
        gap_open / float(real.loc[gap_row, "open"])
    )
    real.loc[gap_row:, ["open", "high", "low", "close"]] = rest  # the market stays down after the gap
    data = tmp_path / "gap.csv"
    real.assign(timestamp=real["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(data, index=False)
    alerts = tmp_path / "alerts.csv"
    when = (real["timestamp"].iloc[entry_row] + pd.Timedelta(seconds=30)).isoformat()
    alerts.write_text(f"time,symbol,action,stop_loss,id\n{when},BTC-PERP,buy,{stop},a1\n")
    result = run_backtest(
        BacktestRequest(
            {"BTC-PERP": data},
            progress=False,
            overrides={
                "internal_signals": "none",
                "signals_replay_file": str(alerts),
                "kelly_fraction": 0,
                "ai_model_provider": "follow",
                "slippage_bps": 0,
            },
        )
    )
    (trade,) = result.trades
    assert trade.exit_reason == "stop_loss"
    # the stop-market sells at the gap's open (1 % below the entry, 1 point in 100 below the stop), not at
    # the stop price that never traded
    assert trade.exit_price == pytest.approx(gap_open) and trade.exit_price < stop
    assert pd.Timestamp(trade.closed_at) == real["timestamp"].iloc[gap_row] + pd.Timedelta(minutes=1)
