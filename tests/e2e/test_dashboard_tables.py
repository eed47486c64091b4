"""The signals and closed-trades tables a page at a time and filtered, in headless Chromium, behind nginx, fed
by the real stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN, wait_for
from tests.stack import RunningStack

pytestmark = pytest.mark.e2e
ROWS = "(id) => document.querySelectorAll(`#${id} tbody tr:not(.empty)`).length"


def test_pages_and_filters_of_the_signals_and_trades(
    stack: RunningStack, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#connection-state[data-state="connected"]', timeout=10_000)
    page.wait_for_selector('#signals-tools[data-total="0"]', timeout=10_000)

    actions = ["buy", "close"] + ["close"] * 10  # one trade, then closes with nothing to close
    for n, action in enumerate(actions):
        response = stack.alert(
            {"id": f"e2e-page-{n}", "symbol": "BTCUSDT.P", "action": action, "strategy": "e2e"}
        )
        assert response.status_code == 202
    wait_for(lambda: stack.api("/api/tables/signals?outcome=pending").json()["total"] == 0, timeout_s=20)
    # live: the rows arrive, then the page is counted again
    page.wait_for_selector('#signals-tools[data-total="12"]', timeout=10_000)
    assert page.text_content("#signals-tools .page-info") == "page 1 of 1 · 12 rows · live"

    page.select_option("#signals-tools select[data-per-page]", "10")
    page.wait_for_function(
        "document.querySelector('#signals-tools .page-info').textContent.startsWith('page 1 of 2')"
    )
    assert page.evaluate(ROWS, "signals") == 10
    newest = stack.api("/api/tables/signals?per_page=10").json()["rows"]
    assert page.get_attribute("#signals tbody tr", "data-signal-id") == str(newest[0]["id"])
    page.click('#signals-tools [data-page="next"]')
    page.wait_for_selector('#signals-tools[data-page="2"]', timeout=5_000)
    page.wait_for_function(f"({ROWS})('signals') === 2", timeout=5_000)
    older = stack.api("/api/tables/signals?per_page=10&page=2").json()["rows"]
    shown = page.eval_on_selector_all("#signals tbody tr", "rows => rows.map(r => r.dataset.signalId)")
    assert shown == [str(s["id"]) for s in older]
    assert page.is_disabled('#signals-tools [data-page="next"]')

    page.select_option('#signals-tools select[data-filter="action"]', "buy")
    page.wait_for_selector('#signals-tools[data-total="1"]', timeout=5_000)
    assert page.get_attribute("#signals-tools", "data-page") == "1"  # a new filter starts at page 1
    assert page.evaluate(ROWS, "signals") == 1
    assert "buy" in page.text_content("#signals tbody tr")
    page.select_option('#signals-tools select[data-filter="outcome"]', "no_trade")
    page.wait_for_selector('#signals-tools[data-total="0"]', timeout=5_000)
    assert page.text_content("#signals tbody") == "no rows match"

    # the closed trades: one long
    page.wait_for_selector('#trades-tools[data-total="1"]', timeout=10_000)
    page.select_option('#trades-tools select[data-filter="side"]', "SELL")
    page.wait_for_selector('#trades-tools[data-total="0"]', timeout=5_000)
    page.select_option('#trades-tools select[data-filter="side"]', "BUY")
    page.wait_for_selector('#trades-tools[data-total="1"]', timeout=5_000)
    assert "LONG" in page.text_content("#trades tbody tr")
    assert not errors
    page.screenshot(path=str(tmp_path / "tables.png"), full_page=True)
    assert (tmp_path / "tables.png").stat().st_size > 10_000
