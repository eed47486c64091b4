"""report.html's tables, as HTML strings: every value escaped, every table in its own scrolling box (so a
phone scrolls the table, never the page). The figures come from ``agent.backtest.figures``."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from agent.analytics.performance import TradeRecord, as_utc
from agent.analytics.vetoes import VetoSummary

MAX_HTML_TRADES = 500
GROUP_COLUMNS = ["trades", "win rate", "pnl", "avg win", "avg loss", "profit factor", "expectancy R"]
SUMMARY_COLUMNS = ["trades", "win rate", "pnl", "expectancy R"]  # per signal source
TRADE_COLUMNS = (
    "#", "market", "side", "quantity", "opened (UTC)", "entry", "closed (UTC)", "exit", "duration", "pnl",
    "fees", "R", "exit reason", "signal source", "analyst", "funding", "legs",
)  # fmt: skip


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:,.2f}%"


def num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def usd(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def duration(seconds: float | None) -> str:
    """``1d 2h 05m``, ``3h 20m``, ``45m``; n/a for None."""
    if seconds is None:
        return "n/a"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 1_440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {mins:02d}m"
    return f"{hours}h {mins:02d}m" if hours else f"{mins}m"


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def signed_class(value: float | None) -> str:
    return "" if not value else (" pos" if value > 0 else " neg")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], css: str = "") -> str:
    """A table in a box of its own that scrolls sideways when wider than the page."""
    head = "".join(
        f'<th class="label">{e(h)}</th>' if i == 0 else f"<th>{e(h)}</th>" for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="label">{e(c)}</td>' if i == 0 else f"<td>{e(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    klass = f' class="{css}"' if css else ""
    return (
        f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def section(title: str, content: str, testid: str = "") -> str:
    hook = f' data-testid="{e(testid)}"' if testid else ""
    return f"<section{hook}><h2>{e(title)}</h2>{content}</section>"


def group_rows(groups: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """One row per group of ``agent.analytics.performance.breakdown``."""
    return [
        [name, str(s["trade_count"]), pct(s["win_rate"]), usd(s["pnl"]), usd(s["avg_win"]),
         usd(s["avg_loss"]), num(s["profit_factor"]), num(s["expectancy_r"], 3)]
        for name, s in groups.items()
    ]  # fmt: skip


def group_table(first: str, groups: Mapping[str, Mapping[str, Any]]) -> str:
    if not groups:
        return '<p class="note">No trades.</p>'
    return table([first, *GROUP_COLUMNS], group_rows(groups))


def summary_rows(groups: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    return [
        [group, str(s["trade_count"]), pct(s["win_rate"]), usd(s["pnl"]), num(s["expectancy_r"], 3)]
        for group, s in groups.items()
    ]


def market_change_table(changes: Mapping[str, Mapping[str, float | None]]) -> str:
    if not changes:
        return '<p class="note">No candles were given to the report.</p>'
    rows = [[symbol, f"{c['first_open']:,.6g}", f"{c['last_close']:,.6g}", pct(c["change"])]
            for symbol, c in changes.items()]  # fmt: skip
    return table(["market", "first open", "last close", "change"], rows)


def best_worst_table(best: Mapping[str, Any] | None, worst: Mapping[str, Any] | None) -> str:
    if best is None or worst is None:
        return '<p class="note">No trades.</p>'

    def row(label: str, t: Mapping[str, Any]) -> list[str]:
        r = "n/a" if t["r_multiple"] is None else f"{t['r_multiple']:.2f}"
        return [label, t["symbol"], t["side"], usd(t["pnl"]), r, t["opened_at"], t["closed_at"],
                duration(t["duration_s"]), t["exit_reason"]]  # fmt: skip

    header = ["", "market", "side", "pnl", "R", "opened", "closed", "duration", "exit reason"]
    return table(header, [row("best", best), row("worst", worst)])


def durations_table(durations: Mapping[str, float | None]) -> str:
    rows = [["all trades", duration(durations["all"])], ["winners", duration(durations["winners"])],
            ["losers", duration(durations["losers"])]]  # fmt: skip
    return table(["trades", "average duration"], rows)


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        rows: list[tuple[str, Any]] = []
        for key in sorted(value, key=str):
            rows += _flatten(f"{prefix}.{key}" if prefix else str(key), value[key])
        return rows
    return [(prefix, value)]


def readable(value: Any) -> str:
    """A setting's value as a person reads it: — for none, yes/no, lists joined, numbers as written."""
    if value is None or value in ({}, [], ""):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value)
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, str | int):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def settings_table(settings: Mapping[str, Any] | None) -> str:
    """Every setting as a row (nested ones as ``RISK_POLICY.max_position_size``), name and value."""
    if not settings:
        return ""
    rows = [[name, readable(value)] for name, value in _flatten("", settings)]
    return section("Settings", table(["setting", "value"], rows, css="settings"), "report-settings")


def vetoes_section(vetoes: VetoSummary | None) -> str:
    """The "Vetoes by rule" table and the signal sources Kelly vetoed (with the record of the first veto)."""
    if vetoes is None:
        return ""
    rules = [[rule, str(count)] for rule, count in vetoes.by_rule.items()]
    parts = [table(["rule", "vetoes"], rules) if rules else '<p class="note">No signal was vetoed.</p>']
    if vetoes.sources_vetoed:
        rows = [[s.source, str(s.vetoes), s.first_at or "", s.reason] for s in vetoes.sources_vetoed]
        parts += ["<h3>Signal sources vetoed (no edge)</h3>",
                  table(["signal source", "vetoes", "first vetoed", "record"], rows)]  # fmt: skip
    return section("Vetoes by rule", "".join(parts), "report-vetoes")


def arena_section(arena: Mapping[str, Any] | None) -> str:
    """The "Arena" table: the baseline (the raw signal) and every analyst's shadow book, gross and net of
    LLM cost."""
    if not arena:
        return ""
    header = ["analyst", "pnl", "return", "max drawdown", "sharpe", "win rate", "trades", "LLM cost",
              "pnl net of LLM cost"]  # fmt: skip
    rows = [
        [f"{r['analyst']} (baseline)" if i == 0 else r["analyst"], usd(r["pnl"]),
         num(r["return_pct"]) + "%", num(r["max_drawdown_pct"]) + "%", num(r["sharpe"]),
         pct(r["win_rate"]), str(r["trades"]), usd(r["llm_cost_usd"]), usd(r["pnl_net_of_llm_cost"])]
        for i, r in enumerate([arena["baseline"], *arena["arena"]])
    ]  # fmt: skip
    note = (
        f'<p class="note">Shadow books on paper, the same signals and risk gate. LLM cost of the run '
        f"{e(usd(arena['llm_cost_usd']))}; the backtest's PnL net of it "
        f"{e(usd(arena['pnl_net_of_llm_cost']))}.</p>"
    )
    return section("Arena", note + table(header, rows), "report-arena")


def _trade_cells(number: int, trade: TradeRecord) -> list[str]:
    seconds = (as_utc(trade.closed_at) - as_utc(trade.opened_at)).total_seconds()
    return [
        str(number), trade.symbol, "long" if trade.side.upper() == "BUY" else "short", f"{trade.quantity:g}",
        as_utc(trade.opened_at).strftime("%Y-%m-%d %H:%M"), f"{trade.entry_price:g}",
        as_utc(trade.closed_at).strftime("%Y-%m-%d %H:%M"), f"{trade.exit_price:g}", duration(seconds),
        usd(trade.pnl), usd(trade.fees), "" if trade.r_multiple is None else f"{trade.r_multiple:.2f}",
        trade.exit_reason, trade.signal_source, trade.analyst, usd(trade.funding), str(len(trade.legs)),
    ]  # fmt: skip


def trades_section(trades: Sequence[TradeRecord]) -> str:
    shown = trades[:MAX_HTML_TRADES]
    note = ""
    if len(trades) > MAX_HTML_TRADES:
        note = (
            f'<p class="note">Showing the first {MAX_HTML_TRADES} of {len(trades)} trades; '
            "all of them are in trades.csv.</p>"
        )
    rows = [_trade_cells(i, t) for i, t in enumerate(shown, 1)]
    return section(f"Trades ({len(trades)})", note + table(TRADE_COLUMNS, rows), "report-trades")
