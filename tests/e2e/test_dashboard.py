"""The dashboard in headless Chromium, behind nginx, fed by the real stack."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN
from tests.stack import RunningStack

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing (make test installs it)")
        pytest.skip("/usr/bin/chromium is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def test_an_alert_appears_live_as_an_order_and_a_position(
    stack: RunningStack, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#connection-state[data-state="connected"]', timeout=10_000)
    assert "token" not in page.url  # the token leaves the address bar
    assert not page.is_visible("#token-form")
    page.wait_for_function("document.getElementById('price-BTC-PERP').textContent !== '—'", timeout=10_000)
    assert page.text_content("#feed-source") == "replayed prices"
    assert "not the live market" in page.text_content("#banner") and page.is_visible("#banner")

    response = stack.alert({"id": "e2e-1", "symbol": "BTCUSDT.P", "action": "buy", "strategy": "e2e"})
    assert response.status_code == 202
    signal_id = response.json()["signal_id"]
    order_row = page.wait_for_selector("#orders tbody tr", timeout=10_000)
    page.wait_for_selector("#orders tbody tr td.status-FILLED", timeout=10_000)
    assert order_row.query_selector("td").text_content() == str(signal_id)
    position = page.wait_for_selector('#positions tbody tr[data-symbol="BTC-PERP"]', timeout=10_000)
    assert "LONG" in position.text_content()
    page.wait_for_selector(f'#signals tbody tr[data-signal-id="{signal_id}"]', timeout=10_000)
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000

    # a fresh page (same browser profile, so the token is remembered) gets the rows from the snapshot
    fresh = context.new_page()
    fresh.goto(stack.base)
    fresh.wait_for_selector("#orders tbody tr td.status-FILLED", timeout=10_000)


def test_a_wrong_token_is_refused_and_asked_again(stack: RunningStack, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{stack.base}/#token=wrong-token-123456")
    page.wait_for_selector('#connection-state[data-state="unauthorized"]', timeout=10_000)
    assert page.is_visible("#token-form")
    page.fill("#token-input", TOKEN)
    page.click("#token-form button")
    page.wait_for_selector('#connection-state[data-state="connected"]', timeout=10_000)
