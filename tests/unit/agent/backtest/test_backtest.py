"""Backtests: the real engine on history, deterministic to the byte, equal to a paper run of the same data and
signals, from the command line, with sweeps."""

from __future__ import annotations

import csv
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from agent.backtest.run import BacktestRequest, run_backtest
from agent.backtest.sweep import SweepRun, overfitting_warning, parse_grid, rank
from bluefinai.cli import main
from shared.config import load_settings
from shared.db import Database, TradeRow
from shared.errors import ConfigError, InvalidInput
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES, wait_for

ROWS = 6_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 6,000 minutes of the real month (a quick but eventful slice)."""
    path = tmp_path_factory.mktemp("data") / "btc-6000.csv"
    real = load_candle_csv(REAL_CANDLES).iloc[:ROWS]
    real.assign(timestamp=real["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    """Historical TradingView alerts, some with a stop and target, one for a market we have no data for."""
    real = load_candle_csv(data)
    path = tmp_path_factory.mktemp("alerts") / "alerts.csv"
    rows = []
    for n, index in enumerate(range(700, ROWS - 200, 450)):
        close = float(real["close"].iloc[index])
        action = "buy" if n % 2 == 0 else "sell"
        stop = close * (0.99 if action == "buy" else 1.01) if n % 3 == 0 else ""
        time_ = (real["timestamp"].iloc[index] + pd.Timedelta(seconds=30)).isoformat()
        rows.append(
            {"time": time_, "symbol": "BTCUSDT.P", "action": action, "stop_loss": stop, "id": f"tv-{n}"}
        )
    rows.append(
        {
            "time": real["timestamp"].iloc[900].isoformat(),
            "symbol": "ETH-PERP",
            "action": "buy",
            "stop_loss": "",
            "id": "eth",
        }
    )
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["time", "symbol", "action", "stop_loss", "id"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def request(data: Path, alerts: Path | None = None, **overrides: Any) -> BacktestRequest:
    values: dict[str, Any] = {
        "internal_signals": "ema_cross",
        "internal_signal_timeframe": "5m",
        "kelly_fraction": 0,
    }
    if alerts is not None:
        values["signals_replay_file"] = str(alerts)
    values.update(overrides)
    return BacktestRequest({"BTC-PERP": data}, overrides=values, progress=False)


def trade_tuples(trades: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (t.symbol, t.side, round(t.quantity, 9), round(t.entry_price, 6), round(t.exit_price, 6),
         pd.Timestamp(t.opened_at).isoformat(), pd.Timestamp(t.closed_at).isoformat(), t.exit_reason,
         round(t.pnl, 6), t.signal_source)
        for t in trades
    ]  # fmt: skip


def test_the_same_inputs_give_byte_identical_reports(tmp_path: Path, data: Path, alerts: Path) -> None:
    first = run_backtest(request(data, alerts), tmp_path / "a")
    second = run_backtest(request(data, alerts), tmp_path / "b")
    assert len(first.trades) >= 10 and {t.signal_source for t in first.trades} == {
        "tradingview",
        "internal:ema_cross",
    }
    for name in (
        "report.json",
        "trades.csv",
        "equity.csv",
        "report.html",
        "equity.png",
        "drawdown.png",
        "price.png",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["trade_count"] == len(first.trades) and report["max_drawdown"] <= 0
    # the account paid every closed trade's fees, plus the opening fee of a position still open at the end
    assert report["fees_paid"] >= sum(t.fees for t in first.trades) - 1e-9
    assert trade_tuples(first.trades) == trade_tuples(second.trades)


def test_a_paper_run_of_the_same_data_and_signals_makes_the_same_trades(
    tmp_path: Path, data: Path, alerts: Path, make_settings: Any
) -> None:
    """Live/backtest parity: the agent's own engine (its thread, the wiring the service uses) replaying the
    file once as fast as it can, with the same alerts, trades exactly as the backtest does."""
    from agent.wiring import build_engine

    backtest = run_backtest(request(data, alerts))
    settings = make_settings(
        market_data_source="replay", replay_file=str(data), replay_speed=0, replay_loop=False,
        internal_signals="ema_cross", internal_signal_timeframe="5m", kelly_fraction=0,
        signals_replay_file=str(alerts),
    )  # fmt: skip
    db = Database(settings.database_url)
    db.migrate()
    engine = build_engine(settings, db, publisher=None)
    feed = engine.feeds["BTC-PERP"]
    engine.start()
    try:
        wait_for(lambda: feed.remaining == 0 and engine.status.candles_seen >= ROWS - 300, timeout_s=120)
        time.sleep(0.5)  # the signals of the last candle
    finally:
        engine.stop()
    from agent.analytics.live import trade_records

    paper = trade_records(db)
    assert trade_tuples(paper) == trade_tuples(backtest.trades)
    assert len(paper) >= 10


def test_alerts_are_decided_at_the_candle_after_their_time(data: Path, alerts: Path) -> None:
    result = run_backtest(request(data, alerts, internal_signals="none"), None)
    assert {t.signal_source for t in result.trades} == {"tradingview"}
    real = load_candle_csv(data)
    first_alert = real["timestamp"].iloc[700] + pd.Timedelta(seconds=30)
    first_entry = min(pd.Timestamp(t.opened_at) for t in result.trades)
    # the alert at 700's minute + 30 s is decided when that minute's candle closes, at its close price
    assert first_entry == first_alert.floor("min") + pd.Timedelta(minutes=1)
    assert result.signals == len(pd.read_csv(alerts))  # every alert decided once (ETH: no market data)


def test_the_command_line_writes_the_report(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(["backtest", "--data", str(data), "--symbol", "BTC-PERP", "--out", str(out), "--timeframe", "5m",
                 "--set", "KELLY_FRACTION=0", "--end", "2022-01-04T00:00"])  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    for key in ("total_return", "max_drawdown", "sharpe", "sortino", "win_rate", "profit_factor", "trade_count",
                "fees_paid", "funding_paid"):  # fmt: skip
        assert key in report
    trades = pd.read_csv(out / "trades.csv")
    assert len(trades) == report["trade_count"] > 0
    assert list(trades.columns[:9]) == ["symbol", "side", "quantity", "entry_time", "entry_price", "exit_time",
                                        "exit_price", "pnl", "fees"]  # fmt: skip
    assert set(trades["exit_reason"]) <= {"stop_loss", "take_profit", "partial_take_profit", "break_even",
        "trailing_stop", "time_exit", "level_break", "risk_view", "funding", "flip", "signal_reversed", "close_signal"}  # fmt: skip
    equity = pd.read_csv(out / "equity.csv")
    assert (
        list(equity.columns) == ["timestamp", "equity"]
        and equity["timestamp"].iloc[-1] == "2022-01-04T00:00:00+00:00"
    )  # the last close
    page = (out / "report.html").read_text()
    assert 'data-testid="report-price-chart"' in page and "LightweightCharts" in page
    breakdowns = report["breakdowns"]
    assert sum(g["trade_count"] for g in breakdowns["by_day"].values()) == report["trade_count"]
    candles = pd.read_csv(data).set_index("timestamp")
    change = breakdowns["market_change"]["BTC-PERP"]
    assert change["last_close"] == candles.loc["2022-01-03 23:59:00", "close"]  # the last candle of the run
    assert change["change"] == pytest.approx(change["last_close"] / change["first_open"] - 1, rel=1e-9)
    printed = capsys.readouterr().out
    assert "Sharpe" in printed and "report:" in printed
    assert main(["backtest", "--data", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_an_llm_analyst_needs_recorded_answers_or_permission(data: Path) -> None:
    with pytest.raises(ConfigError, match="AI_CACHE=replay"):
        run_backtest(request(data, ai_model_provider="claude", anthropic_api_key="sk-ant-xxxxxxxx"))


def test_a_sweep_runs_each_point_in_parallel_and_ranks_them(tmp_path: Path, data: Path) -> None:
    grid = parse_grid(["STOP_ATR_MULTIPLE=1.5,3", "RISK_TOLERANCE=moderate"])
    assert grid == [{"STOP_ATR_MULTIPLE": "1.5", "RISK_TOLERANCE": "moderate"},
                    {"STOP_ATR_MULTIPLE": "3", "RISK_TOLERANCE": "moderate"}]  # fmt: skip
    code = main(["backtest", "--data", str(data), "--out", str(tmp_path), "--timeframe", "5m", "--set",
                 "KELLY_FRACTION=0", "--sweep", "STOP_ATR_MULTIPLE=1.5,3", "--jobs", "2"])  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "sweep.json").read_text())
    runs = summary["runs"]
    assert [r["parameters"]["STOP_ATR_MULTIPLE"] for r in runs] and len(runs) == 2
    sharpes = [r["sharpe"] for r in runs if r["sharpe"] is not None]
    assert sharpes == sorted(sharpes, reverse=True)
    assert all((tmp_path / "runs" / str(r["run"]) / "report.json").exists() for r in runs)
    single = json.loads((tmp_path / "runs" / "1" / "report.json").read_text())
    assert single["settings"]["RISK_POLICY"]["stop_atr_multiple"] == 1.5
    with pytest.raises(InvalidInput):
        parse_grid(["NOVALUES="])


def test_overfitting_is_flagged() -> None:
    def run(number: int, sharpe: float, trades: int = 100) -> SweepRun:
        return SweepRun(number, {"X": str(number)}, {"sharpe": sharpe, "trade_count": trades})

    outlier = rank([run(1, 0.1), run(2, 0.2), run(3, 0.15), run(4, 0.12), run(5, 3.0)], "sharpe")
    assert outlier[0].number == 5 and "outlier" in overfitting_warning(outlier, "sharpe")
    even = rank([run(1, 1.0), run(2, 1.1), run(3, 0.9), run(4, 1.05)], "sharpe")
    assert overfitting_warning(even, "sharpe") == ""
    few = rank([run(1, 2.0, trades=12), run(2, 1.0)], "sharpe")
    assert "12 trades" in overfitting_warning(few, "sharpe")
    assert rank([run(1, 1.0), SweepRun(2, {}, {"sharpe": None})], "sharpe")[-1].number == 2


def test_a_utc_day_closing_writes_the_daily_report(tmp_path: Path, data: Path) -> None:
    from agent.analytics.live import write_daily_report
    from agent.backtest.run import backtest_settings, build_backtest_engine, replay

    req = request(data, database_url=f"sqlite:///{tmp_path / 'daily.db'}")
    req = BacktestRequest(req.data, overrides={**req.overrides, "database_url": f"sqlite:///{tmp_path / 'daily.db'}"},
                          progress=False)  # fmt: skip
    settings = backtest_settings(req)
    db = Database(settings.database_url)
    db.migrate()
    engine = build_backtest_engine(settings, req, db)
    days: list[str] = []
    engine.on_day_closed = lambda day: days.append(
        str(write_daily_report(db, day, tmp_path / "reports", 10_000))
    )
    engine.prepare()
    replay(engine, datetime(2022, 1, 4, 0, 30, tzinfo=UTC), progress=False)
    assert [Path(p).name for p in days] == [
        "daily-2022-01-01.json",
        "daily-2022-01-02.json",
        "daily-2022-01-03.json",
    ]
    report = json.loads(Path(days[1]).read_text())
    with db.session() as session:
        closed_that_day = [
            t for t in session.query(TradeRow) if t.closed_at.date().isoformat() == "2022-01-02"
        ]
    assert report["date"] == "2022-01-02"
    if closed_that_day:
        assert report["that_day"]["overall"]["trade_count"] == len(closed_that_day)
    assert report["to_date"]["overall"]["trade_count"] >= len(closed_that_day)


def test_settings_from_the_request_win_over_the_environment(data: Path) -> None:
    assert load_settings().internal_signals == "none"
    result = run_backtest(request(data, internal_signals="none"))
    assert result.signals == 0 and result.trades == [] and result.metrics.total_return == 0.0
