"""The AI spend and effective settings panels in headless Chromium, behind nginx, on the real stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN
from tests.stack import RunningStack

pytestmark = pytest.mark.e2e


def test_ai_spend_and_effective_settings(stack: RunningStack, browser: Any, tmp_path: Path) -> None:
    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#ai-spend[data-state="ok"]', timeout=10_000)
    spend = stack.api("/api/ai/spend").json()
    assert page.text_content("#ai-spend-value") == f"$0.00 of ${spend['budget_usd']:,.2f}"
    assert page.text_content("#ai-spend-detail").endswith(f"left today (analyst {spend['analyst']})")
    page.wait_for_selector('#settings-panel[data-state="loaded"]', timeout=10_000)
    page.click("#settings-panel details:nth-of-type(2) summary")
    token = page.text_content('#effective-settings tr[data-setting="API_TOKEN"] td:nth-child(2)')
    assert token == "***" and TOKEN not in page.text_content("#settings-panel")
    page.click("#settings-panel details:nth-of-type(1) summary")
    policy = stack.api("/api/settings/effective").json()["risk_policy"]
    shown = page.text_content('#effective-risk tr[data-setting="max_position_size"] td:nth-child(2)')
    assert shown == str(policy["max_position_size"])
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    assert (tmp_path / "overview.png").stat().st_size > 10_000
    assert not errors
