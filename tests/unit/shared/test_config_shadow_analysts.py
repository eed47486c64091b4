"""AI_SHADOW_ANALYSTS: a comma list of known analysts, empty by default; an LLM one needs its key."""

from __future__ import annotations

import pytest

from shared.config import load_settings
from shared.errors import ConfigError


def test_shadow_analysts_are_parsed_and_deduplicated() -> None:
    assert load_settings().ai_shadow_analysts == ()
    settings = load_settings(ai_shadow_analysts=" Rules, follow,rules ", anthropic_api_key="sk-ant-test")
    assert settings.ai_shadow_analysts == ("rules", "follow")


def test_an_unknown_shadow_analyst_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"AI_SHADOW_ANALYSTS.*unknown analyst gpt5"):
        load_settings(ai_shadow_analysts="rules,gpt5")


def test_a_claude_shadow_needs_its_key() -> None:
    with pytest.raises(ConfigError, match=r"AI_SHADOW_ANALYSTS.*claude needs ANTHROPIC_API_KEY"):
        load_settings(ai_shadow_analysts="claude", anthropic_api_key=None)
