"""Backtest reports: report.json, trades.csv (one row per position), fills.csv (every fill of each),
equity.csv, PNG charts (equity, drawdown, price with the trades marked), one self-contained HTML page, and a
plain-text metrics table for the terminal.

Every file is deterministic: the same inputs give byte-identical files (no "now" timestamps, PNGs saved
without a Software tag, fixed figure sizes and styles). Charts are drawn with matplotlib's Agg backend and
never open a window.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from agent.analytics.performance import PerformanceMetrics, TradeRecord, as_utc, drawdown_series
from agent.analytics.vetoes import VetoSummary
from agent.backtest.chart_data import equity_chart_data, price_chart_data
from agent.backtest.figures import report_figures
from agent.backtest.report_page import CSS, scripts
from agent.backtest.report_sections import (
    MAX_HTML_TRADES,
    SUMMARY_COLUMNS,
    arena_section,
    best_worst_table,
    durations_table,
    group_table,
    market_change_table,
    num,
    pct,
    section,
    settings_table,
    signed_class,
    summary_rows,
    table,
    trades_section,
    vetoes_section,
)
from agent.backtest.report_sections import e as _e
from agent.backtest.report_sections import usd as _usd

matplotlib.use("Agg")

MAX_PLOT_POINTS = 5_000
JSON_SIGNIFICANT_DIGITS = 10
__all__ = ["MAX_HTML_TRADES", "arena_section", "num", "pct", "report_html", "vetoes_section", "write_report"]
TRADES_HEADER = (
    "symbol",
    "side",
    "quantity",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "pnl",
    "fees",
    "exit_reason",
    "signal_source",
    "analyst",
    "r_multiple",
    "initial_risk",
    "funding",
    "forfeited",
    "legs",
)
# fills.csv: every fill (leg) of every trade, the trade numbered as its row in trades.csv (from 1)
FILLS_HEADER = ("trade", "symbol", "time", "kind", "side", "quantity", "price", "fee", "pnl", "forfeited")
_FIGSIZE = (10.0, 4.0)
_DPI = 100


@dataclass(frozen=True)
class ReportFiles:
    """Paths of the files ``write_report`` wrote (``price_png`` is None when no prices were given)."""

    directory: Path
    report_json: Path
    trades_csv: Path
    equity_csv: Path
    fills_csv: Path
    report_html: Path
    equity_png: Path
    drawdown_png: Path
    price_png: Path | None


def write_report(
    out_dir: Path,
    metrics: PerformanceMetrics,
    equity: pd.Series,
    trades: Sequence[TradeRecord],
    prices: pd.Series | None = None,
    title: str = "Backtest",
    settings: Mapping[str, Any] | None = None,
    vetoes: VetoSummary | None = None,
    arena: Mapping[str, Any] | None = None,
    candles: Mapping[str, pd.DataFrame] | None = None,
) -> ReportFiles:
    """Write the full report into ``out_dir`` (created if missing) and return the paths written.

    ``prices`` is the traded market's price series for the price chart; when it is named after a symbol
    that some trades have, only those trades are marked on it. ``candles`` are each market's OHLCV
    candles over the period (``open high low close volume`` on a UTC DatetimeIndex): the interactive price
    chart draws the one ``prices`` is named after (else the first), and the market change is measured on
    all of them; without them the chart's candles are folded from ``prices``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        directory=out,
        report_json=out / "report.json",
        trades_csv=out / "trades.csv",
        equity_csv=out / "equity.csv",
        fills_csv=out / "fills.csv",
        report_html=out / "report.html",
        equity_png=out / "equity.png",
        drawdown_png=out / "drawdown.png",
        price_png=None if prices is None else out / "price.png",
    )
    markets = dict(candles) if candles else _candles_from(prices)
    figures = report_figures(trades, markets)
    _write_text(files.report_json, report_json(metrics, settings, vetoes, arena, figures))
    _write_trades_csv(files.trades_csv, trades)
    _write_fills_csv(files.fills_csv, trades)
    _write_text(files.equity_csv, _equity_csv(equity))
    charts = {"Equity": equity_chart(equity), "Drawdown": drawdown_chart(equity)}
    files.equity_png.write_bytes(charts["Equity"])
    files.drawdown_png.write_bytes(charts["Drawdown"])
    if prices is not None and files.price_png is not None:
        charts["Price"] = price_chart(prices, trades)
        files.price_png.write_bytes(charts["Price"])
    chart_json = _chart_json(markets, prices, equity, trades)
    page = report_html(title, metrics, trades, chart_json, settings, vetoes, arena, figures)
    _write_text(files.report_html, page)
    return files


def _candles_from(prices: pd.Series | None) -> dict[str, pd.DataFrame]:
    """One market's candles made of its price series alone (each point open = high = low = close)."""
    if prices is None or not len(prices.dropna()):
        return {}
    closes = prices.dropna().astype(float)
    frame = pd.DataFrame({"open": closes, "high": closes, "low": closes, "close": closes, "volume": 0.0})
    return {str(prices.name) if isinstance(prices.name, str) else "price": frame}


def _interval_s(frame: pd.DataFrame) -> int:
    """The most common step between candles, in seconds (60 when there are fewer than two)."""
    if len(frame) < 2:
        return 60
    steps = np.diff(pd.DatetimeIndex(frame.index).as_unit("s").asi8)
    values, counts = np.unique(steps[steps > 0], return_counts=True)
    return int(values[np.argmax(counts)]) if len(values) else 60


def _chart_json(
    markets: Mapping[str, pd.DataFrame], prices: pd.Series | None, equity: pd.Series,
    trades: Sequence[TradeRecord],
) -> dict[str, Any]:  # fmt: skip
    charts: dict[str, Any] = {"equity": equity_chart_data(equity)}
    if markets:
        named = prices.name if prices is not None and prices.name in markets else None
        symbol = str(named) if named is not None else next(iter(markets))
        frame = markets[symbol]
        marked = _trades_for_symbol(symbol, trades)
        charts["price"] = price_chart_data(symbol, frame, _interval_s(frame), marked)
    return charts


def _trades_for_symbol(symbol: str, trades: Sequence[TradeRecord]) -> list[TradeRecord]:
    """The trades of ``symbol``; all of them (as that market's) when none has it (a bare price series)."""
    own = [t for t in trades if t.symbol == symbol]
    return own if own else [dataclasses.replace(t, symbol=symbol) for t in trades]


def terminal_table(metrics: PerformanceMetrics) -> str:
    """The key metrics as an aligned plain-text table (no trailing newline); the caller prints it."""
    period, *rows = metric_rows(metrics)
    label_width = max(len(label) for label, _ in rows)
    value_width = max(len(value) for _, value in rows)
    lines = [f"{period[0]}: {period[1]}"]
    lines += [f"{label:<{label_width}}  {value:>{value_width}}" for label, value in rows]
    return "\n".join(lines)


def metric_rows(metrics: PerformanceMetrics) -> list[tuple[str, str]]:
    """(label, formatted value) for the key metrics, shared by the terminal table and the HTML page."""
    m = metrics
    return [
        ("Period", f"{m.start or 'n/a'} to {m.end or 'n/a'}"),
        ("Starting equity", _usd(m.starting_equity)),
        ("Final equity", _usd(m.final_equity)),
        ("Total return", pct(m.total_return)),
        ("CAGR", pct(m.cagr)),
        ("Max drawdown", pct(m.max_drawdown)),
        ("Max drawdown duration", f"{m.max_drawdown_duration_s / 86_400:.2f} days"),
        ("Sharpe (daily, ann.)", num(m.sharpe)),
        ("Sortino (daily, ann.)", num(m.sortino)),
        ("Win rate", pct(m.win_rate)),
        ("Profit factor", num(m.profit_factor)),
        ("Expectancy (R)", num(m.expectancy_r, 3)),
        ("R total (PnL / risk)", num(m.r_total, 3)),
        ("Expectancy (USD)", _usd(m.expectancy_usd)),
        ("Average win", _usd(m.avg_win)),
        ("Average loss", _usd(m.avg_loss)),
        ("Trades", str(m.trade_count)),
        ("Wins / losses", f"{m.wins} / {m.losses}"),
        ("Exposure", pct(m.exposure_time)),
        ("Fees paid", _usd(m.fees_paid)),
        ("Funding paid", _usd(m.funding_paid)),
    ]


# ----------------------------------------------------------------------------------------------- JSON


def report_json(
    metrics: PerformanceMetrics, settings: Mapping[str, Any] | None = None, vetoes: VetoSummary | None = None,
    arena: Mapping[str, Any] | None = None, figures: Mapping[str, Any] | None = None,
) -> str:  # fmt: skip
    """report.json's text: the metrics (plus "settings" and "vetoes": by rule, and the sources Kelly
    vetoed; plus the arena's "baseline", "arena", "llm_cost_usd" and "pnl_net_of_llm_cost"; plus
    "breakdowns", ``agent.backtest.figures``), sorted keys, floats to 10 significant digits."""
    data = metrics.as_dict()
    if figures is not None:
        data["breakdowns"] = dict(figures)
    if arena is not None:
        data.update(arena)
    if settings is not None:
        data["settings"] = dict(settings)
    if vetoes is not None:
        data["vetoes"] = vetoes.as_dict()
    return json.dumps(_jsonable(data), sort_keys=True, indent=2, allow_nan=False) + "\n"


def _jsonable(value: Any) -> Any:
    """``value`` made JSON-safe: rounded finite floats, None for NaN/inf, str for unknown objects."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return float(f"{value:.{JSON_SIGNIFICANT_DIGITS}g}") if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


# ------------------------------------------------------------------------------------------------ CSV


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


def _trade_row(trade: TradeRecord) -> list[Any]:
    return [
        trade.symbol,
        trade.side,
        float(trade.quantity),
        as_utc(trade.opened_at).isoformat(),
        float(trade.entry_price),
        as_utc(trade.closed_at).isoformat(),
        float(trade.exit_price),
        float(trade.pnl),
        float(trade.fees),
        trade.exit_reason,
        trade.signal_source,
        trade.analyst,
        "" if trade.r_multiple is None else float(trade.r_multiple),
        "" if trade.initial_risk is None else float(trade.initial_risk),
        float(trade.funding),
        float(trade.forfeited),
        len(trade.legs),
    ]


def _write_fills_csv(path: Path, trades: Sequence[TradeRecord]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FILLS_HEADER)
        for number, trade in enumerate(trades, 1):
            writer.writerows(
                [number, trade.symbol, leg["time"], leg["kind"], leg["side"], float(leg["quantity"]),
                 float(leg["price"]), float(leg["fee"]), float(leg["pnl"]), float(leg["forfeited"])]
                for leg in trade.legs
            )  # fmt: skip


def _write_trades_csv(path: Path, trades: Sequence[TradeRecord]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TRADES_HEADER)
        writer.writerows(_trade_row(trade) for trade in trades)


def _iso_utc(index: pd.DatetimeIndex) -> np.ndarray:
    """ISO-8601 strings with a +00:00 offset, like ``Timestamp.isoformat()``, vectorised."""
    naive = _utc_index(index).tz_localize(None)
    ns = naive.as_unit("ns").asi8
    unit: Literal["s", "us", "ns"] = "ns"
    if not np.any(ns % 1_000_000_000):
        unit = "s"
    elif not np.any(ns % 1_000):
        unit = "us"
    return np.char.add(np.datetime_as_string(naive.to_numpy(), unit=unit), "+00:00")


def _equity_csv(equity: pd.Series) -> str:
    """equity.csv's text: every point, ``timestamp,equity``."""
    index = pd.DatetimeIndex(equity.index)
    stamps = _iso_utc(index) if len(index) else np.array([], dtype=str)
    values = [repr(float(v)) for v in equity.to_numpy(dtype=float)]
    lines = ["timestamp,equity", *(f"{s},{v}" for s, v in zip(stamps.tolist(), values, strict=True))]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- charts


def _utc_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def _downsample(series: pd.Series, max_points: int = MAX_PLOT_POINTS, keep: Sequence[int] = ()) -> pd.Series:
    """Every k-th point (k chosen for at most ~``max_points``), the last point and the ``keep`` positions."""
    n = len(series)
    if n <= max_points:
        return series
    step = math.ceil(n / max_points)
    positions = np.union1d(np.arange(0, n, step), np.array([n - 1, *keep], dtype=int))
    return series.iloc[positions]


def _plot_x(index: pd.Index) -> np.ndarray:
    """Timestamps as naive UTC datetime64 for matplotlib."""
    return np.asarray(_utc_index(pd.DatetimeIndex(index)).tz_localize(None).to_numpy())


def _new_axes(title: str, ylabel: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=_FIGSIZE, dpi=_DPI)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.set_xlabel("time (UTC)")
    return figure, axes


def _finish(figure: Figure, axes: Axes, has_data: bool) -> bytes:
    if has_data:
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    else:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _render(draw: Callable[[], bytes]) -> bytes:
    with matplotlib.rc_context(
        {
            "font.family": "DejaVu Sans",
            "font.size": 9.0,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "lines.linewidth": 1.0,
            "path.simplify": True,
        }
    ):
        return draw()


def equity_chart(equity: pd.Series) -> bytes:
    """PNG bytes of the equity curve."""

    def draw() -> bytes:
        figure, axes = _new_axes("Equity", "USD")
        series = _downsample(equity.dropna())
        if len(series):
            axes.plot(_plot_x(series.index), series.to_numpy(dtype=float), color="tab:blue")
        return _finish(figure, axes, bool(len(series)))

    return _render(draw)


def drawdown_chart(equity: pd.Series) -> bytes:
    """PNG bytes of the drawdown curve (in %), the deepest point always kept."""

    def draw() -> bytes:
        figure, axes = _new_axes("Drawdown", "% below peak")
        drawdown = drawdown_series(equity) * 100.0
        keep = [int(np.argmin(drawdown.to_numpy()))] if len(drawdown) else []
        series = _downsample(drawdown, keep=keep)
        if len(series):
            x = _plot_x(series.index)
            values = series.to_numpy(dtype=float)
            axes.fill_between(x, values, 0.0, color="tab:red", alpha=0.3, linewidth=0)
            axes.plot(x, values, color="tab:red")
        return _finish(figure, axes, bool(len(series)))

    return _render(draw)


def _trades_for(prices: pd.Series, trades: Sequence[TradeRecord]) -> list[TradeRecord]:
    """The trades of the priced symbol when ``prices`` is named after one, else all of them."""
    symbol = prices.name
    if isinstance(symbol, str) and any(t.symbol == symbol for t in trades):
        return [t for t in trades if t.symbol == symbol]
    return list(trades)


def _mark(axes: Axes, moments: list[datetime], levels: list[float], style: dict[str, Any]) -> None:
    if moments:
        x = _plot_x(pd.DatetimeIndex([as_utc(m) for m in moments]))
        axes.plot(x, levels, linestyle="none", zorder=3, **style)


def price_chart(prices: pd.Series, trades: Sequence[TradeRecord]) -> bytes:
    """PNG bytes of the price with entries (green ^ long, red v short) and exits (black x) marked."""

    def draw() -> bytes:
        figure, axes = _new_axes(f"Price {prices.name}" if isinstance(prices.name, str) else "Price", "price")
        series = _downsample(prices.dropna())
        if len(series):
            axes.plot(_plot_x(series.index), series.to_numpy(dtype=float), color="tab:gray")
        marked = _trades_for(prices, trades)
        longs = [t for t in marked if t.side.upper() == "BUY"]
        shorts = [t for t in marked if t.side.upper() != "BUY"]
        long_style = {"marker": "^", "color": "green", "label": "long entry"}
        short_style = {"marker": "v", "color": "red", "label": "short entry"}
        _mark(axes, [t.opened_at for t in longs], [t.entry_price for t in longs], long_style)
        _mark(axes, [t.opened_at for t in shorts], [t.entry_price for t in shorts], short_style)
        exit_style = {"marker": "x", "color": "black", "label": "exit"}
        _mark(axes, [t.closed_at for t in marked], [t.exit_price for t in marked], exit_style)
        if marked:
            axes.legend(loc="best")
        return _finish(figure, axes, bool(len(series)) or bool(marked))

    return _render(draw)


# ----------------------------------------------------------------------------------------------- HTML


def _cards(metrics: PerformanceMetrics, figures: Mapping[str, Any]) -> str:
    m = metrics
    changes = figures.get("market_change") or {}
    cards = [("Total return", pct(m.total_return), m.total_return),
             ("Max drawdown", pct(m.max_drawdown), None),
             ("Sharpe", num(m.sharpe), None), ("Trades", str(m.trade_count), None),
             ("Win rate", pct(m.win_rate), None), ("Profit factor", num(m.profit_factor), None)]  # fmt: skip
    cards += [(f"{symbol} change", pct(c["change"]), c["change"]) for symbol, c in changes.items()]
    return '<div class="cards" data-testid="report-cards">' + "".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value{signed_class(sign)}">{_e(value)}</div></div>'
        for label, value, sign in cards
    ) + "</div>"  # fmt: skip


_LEGEND = (
    '<p class="legend"><span><i class="lg-ema20"></i>EMA 20</span><span><i class="lg-ema50"></i>EMA 50</span>'
    '<span><i class="lg-bb"></i>Bollinger 20, 2σ</span>'
    "<span>▲ long entry · ▼ short entry · ● exit (green: made money)</span></p>"
)


def _charts(charts: Mapping[str, Any]) -> str:
    price = charts.get("price")
    parts = []
    if price is not None:
        title = f"Price {price['symbol']} ({price['timeframe']} candles)"
        parts.append(section(title, '<div class="chart" data-testid="report-price-chart"></div>' + _LEGEND))
    if charts.get("equity") is not None:
        parts.append(
            '<div class="grid2">'
            + section("Equity", '<div class="chart small" data-testid="report-equity-chart"></div>')
            + section("Drawdown (% below the peak)",
                      '<div class="chart small" data-testid="report-drawdown-chart"></div>')
            + "</div>"
        )  # fmt: skip
    return "".join(parts)


def _breakdown_sections(metrics: PerformanceMetrics, figures: Mapping[str, Any]) -> str:
    if not figures:
        return section("Exit reasons", table(["exit reason", "trades"], list(metrics.by_exit_reason.items())))
    periods = "".join(
        f"<h3>{_e(title)}</h3>" + group_table(first, figures[key])
        for title, first, key in (("Per month", "month", "by_month"), ("Per week", "week (ISO)", "by_week"),
                                  ("Per day", "day (UTC)", "by_day"))
    )  # fmt: skip
    return "".join(
        [
            '<div class="grid2">',
            section("Market change over the period", market_change_table(figures["market_change"]),
                    "report-market-change"),
            section("Average duration", durations_table(figures["duration_s"]), "report-durations"),
            "</div>",
            section("Best and worst trade", best_worst_table(figures["best_trade"], figures["worst_trade"]),
                    "report-best-worst"),
            section("Per market", group_table("market", figures["by_market"]), "report-markets"),
            section("Per exit reason", group_table("exit reason", figures["by_exit_reason"]), "report-exits"),
            section("Long / short", group_table("side", figures["by_side"]), "report-sides"),
            section("Per period (by the day a trade closed)", periods, "report-periods"),
        ]
    )  # fmt: skip


def report_html(
    title: str,
    metrics: PerformanceMetrics,
    trades: Sequence[TradeRecord],
    charts: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
    vetoes: VetoSummary | None = None,
    arena: Mapping[str, Any] | None = None,
    figures: Mapping[str, Any] | None = None,
) -> str:
    """One self-contained HTML page: headline figures, the interactive charts (``charts``: "price" and
    "equity" from ``agent.backtest.chart_data``), metrics, breakdowns (``figures`` from
    ``agent.backtest.figures``), vetoes, arena, settings and trades."""
    figures = figures or {}
    body = "".join(
        [
            f"<h1>{_e(title)}</h1>",
            f'<p class="period">{_e(metric_rows(metrics)[0][1])}</p>',
            _cards(metrics, figures),
            _charts(charts),
            section("Metrics", table(["metric", "value"], metric_rows(metrics)), "report-metrics"),
            _breakdown_sections(metrics, figures),
            section("Signal sources", table(["signal source", *SUMMARY_COLUMNS],
                                            summary_rows(metrics.by_signal_source))),
            vetoes_section(vetoes),
            arena_section(arena),
            settings_table(None if settings is None else _jsonable(settings)),
            trades_section(trades),
        ]
    )  # fmt: skip
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        f"{scripts(dict(charts))}\n</body>\n</html>\n"
    )
