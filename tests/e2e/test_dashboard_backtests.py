"""The dashboard's Backtests view in headless Chromium, behind nginx, on the real stack: the past runs
listed newest first, one opened (its report's charts drawn in the frame under the dashboard's CSP), two
compared side by side, and an optimisation (hand-written optimize.json) with its folds and warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.backtest_runs import OPTIMIZE, write_runs
from tests.conftest import TOKEN
from tests.stack import RunningStack

pytestmark = pytest.mark.e2e


def test_list_open_compare_and_an_optimisation(stack: RunningStack, browser: Any, tmp_path: Path) -> None:
    reports = write_runs(tmp_path / "backtests", days=3)
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#backtests-panel[data-state="loaded"][data-runs="3"]', timeout=15_000)
    rows = page.locator("#backtests-list tbody tr")
    assert [rows.nth(i).get_attribute("data-run") for i in range(3)] == ["opt-ema", "newer-ema", "older-ema"]
    newer = page.locator('#backtests-list tr[data-run="newer-ema"] td')
    assert newer.nth(4).text_content() == str(reports["newer-ema"]["trade_count"])
    assert newer.nth(5).text_content() == f"{reports['newer-ema']['total_return'] * 100:.2f}%"

    # open one: its report in the frame, the charts drawn with the dashboard's own copies of the scripts
    page.click('#backtests-list tr[data-run="older-ema"] [data-testid="open-backtest"]')
    frame = page.frame_locator('[data-testid="backtest-report"]')
    for hook in ("report-price-chart", "report-equity-chart"):
        frame.locator(f'[data-testid="{hook}"] canvas').first.wait_for(timeout=10_000)
    assert frame.locator("h1").text_content() == "Backtest older"

    # compare two
    page.check('#backtests-list tr[data-run="older-ema"] [data-testid="compare-pick"]')
    assert page.is_disabled('[data-testid="backtests-compare"]')
    page.check('#backtests-list tr[data-run="newer-ema"] [data-testid="compare-pick"]')
    page.click('[data-testid="backtests-compare"]')
    page.wait_for_selector('[data-testid="compare-table"]')
    compared = stack.api("/api/backtests/compare?first=newer-ema&second=older-ema").json()["rows"]
    trades_row = next(r for r in compared if r[0] == "Trades")
    shown = page.locator('[data-testid="compare-table"] tbody tr', has_text="Trades").first
    assert shown.locator("td").all_text_contents() == trades_row

    # the optimisation: best params, folds, the warning, its best trial's report
    page.click('#backtests-list tr[data-run="opt-ema"] [data-testid="open-backtest"]')
    page.wait_for_selector('[data-testid="optimisation-folds"]')
    assert page.text_content('[data-testid="overfitting-warning"]') == f"⚠ {OPTIMIZE['overfitting_warning']}"
    params = page.locator('[data-testid="optimisation-params"] tbody tr')
    assert [params.nth(i).locator("td").all_text_contents() for i in range(2)] == [
        ["fast", "12"],
        ["slow", "48"],
    ]
    folds = page.locator('[data-testid="optimisation-folds"] tbody tr')
    assert folds.count() == 2 and folds.nth(1).locator("td").all_text_contents()[-1] == "-0.40"
    page.click('[data-testid="open-best-report"]')
    page.wait_for_function(
        "document.getElementById('backtest-view-title').textContent.startsWith('opt-ema: best trial #2')"
    )
    frame.locator('[data-testid="report-price-chart"] canvas').first.wait_for(timeout=10_000)
    assert frame.locator("h1").text_content() == "Best trial"
    shot = tmp_path / "dashboard-backtests.png"
    page.locator("#backtests-panel").screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    for width in (1280, 390):  # on a phone the runs and the comparison scroll inside the panel, not the page
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth"), width
    page.screenshot(path=str(tmp_path / "dashboard-backtests-390.png"))
    assert not errors
