"""Prompt templates (versioned files in ``prompts/``) filled from the signal and the market context."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from agent.analysis.base import MarketContext
from shared.indicators import compute
from shared.models import Signal

PROMPTS = Path(__file__).resolve().parent / "prompts"
VERSION = "decision_v1"
MAX_PROMPT_CHARS = 12_000  # the token budget, about 3,000 tokens


@dataclass(frozen=True)
class Prompt:
    version: str
    text: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(f"{self.version}\n{self.text}".encode()).hexdigest()


def build_prompt(
    signal: Signal, context: MarketContext, max_leverage: float, research: dict[str, object] | None = None
) -> Prompt:
    latest = compute(context.candles).iloc[-1] if len(context.candles) else None
    market = {} if latest is None else {k: round(float(v), 4) for k, v in latest.items() if v == v}
    text = (
        (PROMPTS / f"{VERSION}.txt")
        .read_text()
        .format(
            signal=json.dumps(
                {
                    "action": signal.action.value,
                    "source": signal.source,
                    "strategy": signal.strategy,
                    "price": signal.price,
                    "confidence": signal.confidence,
                }
            ),
            symbol=context.symbol,
            price=context.price,
            market=json.dumps(market, sort_keys=True),
            position=json.dumps(
                {"quantity": context.position.quantity, "entry": context.position.entry_price}
            ),
            max_leverage=max_leverage,
        )
    )
    if research is not None:
        text += f"Research (from a search model, may be wrong): {json.dumps(research, sort_keys=True)}\n"
    if len(text) > MAX_PROMPT_CHARS:
        text = text[:MAX_PROMPT_CHARS]
    return Prompt(VERSION, text)
