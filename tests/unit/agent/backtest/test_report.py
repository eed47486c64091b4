"""Backtest report files: JSON, CSVs, PNG charts, HTML page, terminal table; deterministic output."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agent.analytics.performance import PerformanceMetrics, TradeRecord, compute_metrics
from agent.backtest.chart_data import MAX_CHART_POINTS
from agent.backtest.report import MAX_HTML_TRADES, TRADES_HEADER, terminal_table, write_report
from agent.backtest.report_page import CHARTS_FILE, charts_library_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
START = datetime(2024, 1, 1, tzinfo=UTC)


def make_trades(count: int = 3) -> list[TradeRecord]:
    trades = []
    for i in range(count):
        opened = START + timedelta(hours=2 * i)
        side = "BUY" if i % 2 == 0 else "SELL"
        pnl = 12.5 if i % 3 != 1 else -7.25
        reason = "<script>alert('x')</script>" if i == 0 else "take_profit"
        trades.append(
            TradeRecord(
                "BTC-PERP", side, 0.01, 40_000.0 + i, 40_100.0 + i, pnl, 0.4, opened,
                opened + timedelta(hours=1), reason, "tradingview" if i % 2 == 0 else "internal:ema_cross",
                "rules", None if i == 2 else 1.5,
            )
        )  # fmt: skip
    return trades


def make_equity(points: int = 3 * 24 * 60) -> pd.Series:
    rng = np.random.default_rng(7)
    index = pd.date_range(START, periods=points, freq="min")
    return pd.Series(10_000.0 * np.exp(np.cumsum(rng.normal(0, 5e-4, points))), index=index, name="equity")


def make_prices(equity: pd.Series) -> pd.Series:
    return pd.Series(40_000.0 * equity.to_numpy() / 10_000.0, index=equity.index, name="BTC-PERP")


@pytest.fixture(scope="module")
def inputs() -> tuple[pd.Series, list[TradeRecord], PerformanceMetrics]:
    equity = make_equity()
    trades = make_trades()
    metrics = compute_metrics(equity, trades, starting_equity=10_000.0, fees_paid=1.2, funding_paid=-0.35)
    return equity, trades, metrics


def write(out: Path, inputs: tuple[pd.Series, list[TradeRecord], PerformanceMetrics]) -> None:
    equity, trades, metrics = inputs
    settings = {"symbol": "BTC-PERP", "fee": 0.1 + 0.2, "start": START, "path": Path("/tmp/x")}
    write_report(
        out, metrics, equity, trades, prices=make_prices(equity), title="Test <run>", settings=settings
    )


def test_files_and_contents(
    tmp_path: Path, inputs: tuple[pd.Series, list[TradeRecord], PerformanceMetrics]
) -> None:
    equity, trades, metrics = inputs
    out = tmp_path / "nested" / "report"
    files = write_report(
        out, metrics, equity, trades, prices=make_prices(equity), title="Run", settings={"leverage": 3}
    )
    assert files.directory == out
    for path in (files.report_json, files.trades_csv, files.equity_csv, files.report_html):
        assert path.is_file() and path.parent == out
    for png in (files.equity_png, files.drawdown_png, files.price_png):
        assert png is not None and png.read_bytes().startswith(PNG_MAGIC)

    data = json.loads(files.report_json.read_text())
    required = {"total_return", "max_drawdown", "sharpe", "sortino", "win_rate", "profit_factor"}
    assert required | {"trade_count", "fees_paid", "funding_paid"} <= set(data)
    assert data["trade_count"] == 3 and data["fees_paid"] == 1.2 and data["funding_paid"] == -0.35
    assert data["settings"] == {"leverage": 3}
    assert data["total_return"] == pytest.approx(metrics.total_return, rel=1e-9)
    text = files.report_json.read_text()
    assert text.endswith("}\n") and text == json.dumps(data, sort_keys=True, indent=2) + "\n"

    with files.trades_csv.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(TRADES_HEADER)
    assert ",".join(rows[0]) == (
        "symbol,side,quantity,entry_time,entry_price,exit_time,exit_price,pnl,fees,exit_reason,"
        "signal_source,analyst,r_multiple,initial_risk,funding,forfeited,legs"
    )
    assert len(rows) == 1 + len(trades)
    assert rows[1][:5] == ["BTC-PERP", "BUY", "0.01", "2024-01-01T00:00:00+00:00", "40000.0"]
    assert rows[1][9] == "<script>alert('x')</script>"
    assert rows[3][12] == ""  # unknown R

    lines = files.equity_csv.read_text().splitlines()
    assert lines[0] == "timestamp,equity"
    assert len(lines) == 1 + len(equity)
    assert lines[1] == f"2024-01-01T00:00:00+00:00,{float(equity.iloc[0])!r}"
    assert lines[-1].startswith("2024-01-03T23:59:00+00:00,")


def test_json_floats_are_rounded_to_ten_significant_digits(
    tmp_path: Path, inputs: tuple[pd.Series, list[TradeRecord], PerformanceMetrics]
) -> None:
    write(tmp_path, inputs)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["settings"]["fee"] == 0.3  # 0.30000000000000004 rounded
    assert data["settings"]["start"] == "2024-01-01T00:00:00+00:00"
    assert data["settings"]["path"] == "/tmp/x"
    digits = re.sub(r"[^0-9]", "", repr(data["sharpe"]).lstrip("-0.").split("e")[0])
    assert len(digits) <= 10


def embedded(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_long_equity_is_written_in_full(tmp_path: Path) -> None:
    equity = make_equity(25_000)
    metrics = compute_metrics(equity, [], starting_equity=10_000.0)
    files = write_report(tmp_path, metrics, equity, [])
    assert len(files.equity_csv.read_text().splitlines()) == 25_001
    assert files.price_png is None and not (tmp_path / "price.png").exists()
    assert files.drawdown_png.read_bytes().startswith(PNG_MAGIC)
    charts = embedded(files.report_html.read_text())
    assert "price" not in charts  # no prices given: no price chart
    curve = charts["equity"]
    assert len(curve["time"]) <= MAX_CHART_POINTS + 2 and curve["time"] == sorted(set(curve["time"]))
    assert curve["time"][-1] == int(equity.index[-1].timestamp()) and curve["equity"][-1] == pytest.approx(
        float(equity.iloc[-1]), rel=1e-7
    )
    deepest = (equity / equity.cummax() - 1.0).min() * 100.0
    assert min(curve["drawdown"]) == pytest.approx(deepest, rel=1e-7)  # the deepest point is kept


def test_html_is_self_contained_and_escaped(
    tmp_path: Path, inputs: tuple[pd.Series, list[TradeRecord], PerformanceMetrics]
) -> None:
    write(tmp_path, inputs)
    page = (tmp_path / "report.html").read_text()
    assert "<img" not in page  # the interactive charts replace the PNGs (still written beside the page)
    assert charts_library_path().read_text() in page  # the chart library is inlined: works offline
    assert CHARTS_FILE.endswith(".js") and "<script src" not in page and "<link" not in page
    for hook in ("report-price-chart", "report-equity-chart", "report-drawdown-chart"):
        assert f'data-testid="{hook}"' in page
    charts = embedded(page)
    price = charts["price"]
    assert price["symbol"] == "BTC-PERP" and price["timeframe"] == "5m"  # 3 days of 1m: 864 candles
    assert len(price["time"]) == 864 and set(price["lines"]) == {"ema_20", "ema_50", "bb_upper", "bb_mid",
                                                                  "bb_lower"}  # fmt: skip
    assert [m["kind"] for m in price["markers"]] == ["entry", "exit", "entry", "exit", "entry", "exit"]
    assert "<script>alert" not in page and "\\u003cscript>alert" in page  # escaped in the embedded JSON
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<h1>Test &lt;run&gt;</h1>" in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    for section in (
        "Per exit reason",
        "Signal sources",
        "internal:ema_cross",
        "take_profit",
        "Per market",
        "Long / short",
        "Per month",
        "Per week",
        "Per day",
        "Market change over the period",
        "Best and worst trade",
        "Average duration",
        "Settings",
    ):
        assert section in page
    settings = page.split('data-testid="report-settings"', 1)[1]
    assert '<td class="label">fee</td><td>0.3</td>' in settings  # a readable table, not a JSON dump
    assert '<td class="label">path</td><td>/tmp/x</td>' in settings


def test_html_shows_at_most_500_trades(tmp_path: Path) -> None:
    trades = make_trades(MAX_HTML_TRADES + 20)
    equity = make_equity(2 * 24 * 60)
    metrics = compute_metrics(equity, trades, starting_equity=10_000.0)
    files = write_report(tmp_path, metrics, equity, trades)
    page = files.report_html.read_text()
    trades_table = page.split("<h2>Trades (520)</h2>", 1)[1]
    assert trades_table.count("<tr>") == 1 + MAX_HTML_TRADES  # header row + 500
    assert f"first {MAX_HTML_TRADES} of 520 trades" in page
    assert len(files.trades_csv.read_text().splitlines()) == 521


def test_output_is_deterministic(
    tmp_path: Path, inputs: tuple[pd.Series, list[TradeRecord], PerformanceMetrics]
) -> None:
    write(tmp_path / "a", inputs)
    write(tmp_path / "b", inputs)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [
        "drawdown.png",
        "equity.csv",
        "equity.png",
        "fills.csv",
        "price.png",
        "report.html",
        "report.json",
        "trades.csv",
    ]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_empty_report(tmp_path: Path) -> None:
    empty = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    metrics = compute_metrics(empty, [], starting_equity=1_000.0)
    files = write_report(tmp_path, metrics, empty, [], prices=empty)
    assert files.equity_csv.read_text() == "timestamp,equity\n"
    assert files.trades_csv.read_text() == ",".join(TRADES_HEADER) + "\n"
    assert files.price_png is not None and files.price_png.read_bytes().startswith(PNG_MAGIC)
    data = json.loads(files.report_json.read_text())
    assert data["sharpe"] is None and data["trade_count"] == 0 and "settings" not in data


def test_terminal_table(inputs: tuple[pd.Series, list[TradeRecord], PerformanceMetrics]) -> None:
    _, _, metrics = inputs
    table = terminal_table(metrics)
    lines = table.splitlines()
    assert lines[0].startswith("Period: 2024-01-01T00:00:00+00:00 to ")
    row = {line[:22].strip(): line[22:].strip() for line in lines[1:]}
    assert row["Total return"] == f"{metrics.total_return * 100:,.2f}%"
    assert row["Max drawdown"] == f"{metrics.max_drawdown * 100:,.2f}%"
    assert row["Max drawdown duration"] == f"{metrics.max_drawdown_duration_s / 86_400:.2f} days"
    assert metrics.sharpe is not None and row["Sharpe (daily, ann.)"] == f"{metrics.sharpe:,.2f}"
    assert row["Win rate"] == "66.67%"  # 2 of 3
    assert row["Profit factor"] == "3.45"  # 25 / 7.25
    assert row["Expectancy (R)"] == "1.500"
    assert row["Expectancy (USD)"] == "$5.92"  # (12.5 - 7.25 + 12.5) / 3
    assert row["Trades"] == "3"
    assert row["Fees paid"] == "$1.20" and row["Funding paid"] == "-$0.35"
    for label in ("CAGR", "Sortino (daily, ann.)", "Exposure"):
        assert label in row
    widths = {len(line) for line in lines[1:]}
    assert len(widths) == 1  # aligned


def test_terminal_table_shows_undefined_values_as_na() -> None:
    empty = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    table = terminal_table(compute_metrics(empty, [], starting_equity=1_000.0))
    assert "Sharpe (daily, ann.)" in table and "n/a" in table
    assert "Period: n/a to n/a" in table
