"""The arena's analysts from AI_SHADOW_ANALYSTS, each built as the factory builds the engine's."""

from __future__ import annotations

from agent.analysis.factory import build_analyst
from agent.arena.arena import BASELINE, Arena
from shared.config import Settings
from shared.db import Database

LOCAL = ("rules", "follow")  # analysts that call no LLM


def add_shadow_analysts(arena: Arena, settings: Settings, db: Database) -> None:
    """Every AI_SHADOW_ANALYSTS analyst into the arena (the baseline and the engine's own are there)."""
    for name in settings.ai_shadow_analysts:
        if name not in (BASELINE, arena.engine_analyst):
            arena.add(name, build_analyst(settings, db, name))
