"""The AI spend and effective settings panels in headless Chromium, behind nginx, on the real stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN, wait_for
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


def test_arena_shows_each_shadow_book_beside_the_baseline(
    stack: RunningStack, browser: Any, tmp_path: Path
) -> None:
    for n, action in enumerate(
        ("buy", "sell")
    ):  # the follow baseline opens on the buy and closes on the sell
        stack.alert({"id": f"e2e-arena-{n}", "symbol": "BTCUSDT.P", "action": action, "strategy": "arena"})
        wait_for(lambda n=n: len(stack.api("/api/decisions").json()["decisions"]) > n, timeout_s=15)
    wait_for(lambda: stack.api("/api/arena").json()["baseline"]["trades"] >= 1, timeout_s=15)
    page = browser.new_context(viewport={"width": 390, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#arena-panel[data-state="loaded"]', timeout=10_000)
    arena = stack.api("/api/arena").json()
    baseline = arena["baseline"]
    cells = page.locator('#arena tr.baseline[data-analyst="follow"] td').all_text_contents()
    assert cells[0].startswith("follow (baseline") and cells[1] == str(baseline["trades"])
    assert float(cells[2].replace("$", "").replace(",", "")) == pytest.approx(baseline["pnl"], abs=1e-4)
    assert float(cells[8].replace("$", "").replace(",", "")) == pytest.approx(
        baseline["pnl_net_of_llm_cost"], abs=1e-4
    )
    shown = page.locator("#arena tbody tr").evaluate_all("rows => rows.map(r => r.dataset.analyst)")
    assert shown == ["follow", *(row["analyst"] for row in arena["arena"])]
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    page.locator("#arena-panel").screenshot(path=str(tmp_path / "arena.png"))
    assert (tmp_path / "arena.png").stat().st_size > 2_000
    assert not errors
