"""Prompt templates (versioned files in ``prompts/``) filled from the signal, the market across timeframes,
the portfolio, the risk limits and the analyst's own track record.

The token budget is enforced: tokens are estimated as characters / 4, and while a prompt is over
``MAX_PROMPT_TOKENS`` its least important sections are replaced by a note saying they were left out, in this
order: research, recent trades, levels, the 1m and 1d timeframes, the by-regime record, order book and
funding. What was left out is named in the prompt itself, so the audit shows it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.analysis.base import MarketContext
from shared.indicators import compute
from shared.marketdata.snapshot import MarketSnapshot
from shared.models import Signal

PROMPTS = Path(__file__).resolve().parent / "prompts"
VERSION = "decision_v2"
MAX_PROMPT_TOKENS = 3_000
CHARS_PER_TOKEN = 4
SHOWN = (
    ("rsi", "RSI", 1), ("macd_hist", "MACD hist", 3), ("atr", "ATR", 2), ("adx", "ADX", 1),
    ("bb_pband", "BB %B", 2), ("rel_volume", "rel vol", 2), ("ema_20", "EMA20", 2), ("ema_50", "EMA50", 2),
)  # fmt: skip
OMITTED = "(omitted for the token budget)"
DROP_ORDER = ("research", "recent", "levels", "timeframes_edges", "by_regime", "book", "funding")


@dataclass(frozen=True)
class Prompt:
    version: str
    text: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(f"{self.version}\n{self.text}".encode()).hexdigest()

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.text)


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _number(value: Any, digits: int) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and not math.isfinite(value))
        else f"{value:.{digits}f}"
    )


def _timeframe_lines(context: MarketContext, snapshot: MarketSnapshot | None) -> dict[str, str]:
    """One line per timeframe; without a snapshot, the base candles' indicators (1m unless coarser)."""
    if snapshot is None:
        latest = compute(context.candles).iloc[-1] if len(context.candles) else None
        if latest is None:
            return {}
        values = {k: float(v) for k, v in latest.items()}
        shown = ", ".join(f"{label} {_number(values.get(k), d)}" for k, label, d in SHOWN)
        return {context.candles_timeframe: f"{context.candles_timeframe}: {shown}"}
    lines = {}
    for timeframe, view in snapshot.timeframes.items():
        if view.last_closed is None:
            continue
        shown = ", ".join(f"{label} {_number(view.indicators.get(k), d)}" for k, label, d in SHOWN)
        lines[timeframe] = f"{timeframe}: close {view.last_closed.close:g}, trend {view.trend}, {shown}"
    return lines


def _record_text(record: Mapping[str, Any] | None, part: str) -> str:
    if not record:
        return "no closed trades yet"
    if part == "overall":
        overall = record.get("overall", {})
        return json.dumps(overall, sort_keys=True) if overall.get("trades") else "no closed trades yet"
    return json.dumps(record.get(part, {}), sort_keys=True)


def market_sections(context: MarketContext) -> dict[str, str]:
    """The market part of a prompt (a decision's or a position review's): the timeframes (core and the
    1m/1d edges), levels, order book and funding."""
    snapshot = context.snapshot
    lines = _timeframe_lines(context, snapshot)
    core = {tf: line for tf, line in lines.items() if tf not in ("1m", "1d")}
    edges = {tf: line for tf, line in lines.items() if tf in ("1m", "1d")}
    return {
        "timeframes_core": "\n".join(core.values()) or "no closed candles yet",
        "timeframes_edges": "\n".join(edges.values()),
        "levels": json.dumps(
            [{"price": round(lv.price, 2), "kind": lv.kind, "touches": lv.touches} for lv in snapshot.levels]
            if snapshot
            else []
        ),
        "book": json.dumps(snapshot.book if snapshot and snapshot.book else "unknown"),
        "funding": (
            f"rate {snapshot.funding.rate:.6f} per interval, {snapshot.funding.annualised:.1%} a year"
            if snapshot and snapshot.funding
            else "unknown"
        ),
    }


def _sections(
    signal: Signal, context: MarketContext, research: Mapping[str, object] | None
) -> dict[str, str]:
    record = context.track_record
    source = (record or {}).get("by_signal_source", {}).get(signal.source) if record else None
    return {
        **market_sections(context),
        "signal": json.dumps(
            {
                "action": signal.action.value,
                "source": signal.source,
                "strategy": signal.strategy,
                "price": signal.price,
                "confidence": signal.confidence,
                "stop_loss": signal.stop_loss,
                "take_profit": signal.take_profit,
                "timeframe": signal.timeframe,
            }
        ),
        "source_record": json.dumps(source, sort_keys=True)
        if source
        else "no closed trades from this source yet",
        "positions": json.dumps(
            [{"symbol": p.symbol, "quantity": p.quantity, "entry": p.entry_price} for p in context.portfolio]
            or "none"
        ),
        "limits": json.dumps(dict(context.limits), sort_keys=True) if context.limits else "default",
        "overall": _record_text(record, "overall"),
        "by_regime": _record_text(record, "by_regime"),
        "recent": _record_text(record, "recent"),
        "research": json.dumps(research, sort_keys=True) if research is not None else "",
    }


def _render(signal: Signal, context: MarketContext, max_leverage: float, parts: Mapping[str, str]) -> str:
    timeframes = "\n".join(p for p in (parts["timeframes_core"], parts["timeframes_edges"]) if p)
    track = (
        f"overall: {parts['overall']}\nby market regime: {parts['by_regime']}\nlast trades: {parts['recent']}"
    )
    snapshot = context.snapshot
    moment = snapshot.time.isoformat() if snapshot is not None and snapshot.time is not None else "n/a"
    text = (PROMPTS / f"{VERSION}.txt").read_text().format(
        signal=parts["signal"], source_record=parts["source_record"], symbol=context.symbol,
        price=context.price, time=moment,
        timeframes=timeframes, levels=parts["levels"], book=parts["book"], funding=parts["funding"],
        positions=parts["positions"], limits=parts["limits"], track_record=track, max_leverage=max_leverage,
    )  # fmt: skip
    if parts["research"]:
        text += f"\n## Research (from a search model, may be wrong)\n{parts['research']}\n"
    return text


def build_prompt(
    signal: Signal,
    context: MarketContext,
    max_leverage: float,
    research: Mapping[str, object] | None = None,
    max_tokens: int = MAX_PROMPT_TOKENS,
) -> Prompt:
    parts = _sections(signal, context, research)
    text = _render(signal, context, max_leverage, parts)
    omitted: list[str] = []
    for name in DROP_ORDER:
        if estimate_tokens(text) <= max_tokens:
            break
        if parts[name] and parts[name] != OMITTED:
            parts[name] = OMITTED if name != "research" else ""
            omitted.append(name)
            text = _render(signal, context, max_leverage, parts)
    if omitted:
        text += f"\n(Left out for the token budget: {', '.join(omitted)}.)\n"
    if estimate_tokens(text) > max_tokens:  # the core alone is too long: cut, and say so
        note = "\n(Cut at the token budget.)\n"
        text = text[: max_tokens * CHARS_PER_TOKEN - len(note)] + note
    return Prompt(VERSION, text)
