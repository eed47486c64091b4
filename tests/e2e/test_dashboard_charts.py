"""The dashboard's charts in headless Chromium, behind nginx, fed by the real stack: the price chart (candles,
indicators, markers after a trade, the stop and target as price lines), the equity chart, and the page at a
phone's width (390 px) without sideways scrolling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN
from tests.stack import RunningStack

pytestmark = pytest.mark.e2e
CANVAS_SIZE = """(id) => Math.max(0, ...[...document.querySelectorAll(`#${id} canvas`)]
                                 .map((c) => c.width * c.height))"""


def open_dashboard(browser: Any, stack: RunningStack, width: int, height: int) -> Any:
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#connection-state[data-state="connected"]', timeout=10_000)
    page.wait_for_function("window.__bluefinai && window.__bluefinai.candles > 0", timeout=15_000)
    page.errors = errors
    return page


def test_the_price_chart_draws_candles_and_marks_a_trade(
    stack: RunningStack, browser: Any, tmp_path: Path
) -> None:
    page = open_dashboard(browser, stack, 1400, 1000)
    served = stack.api("/api/candles?symbol=BTC-PERP&limit=300").json()
    chart = page.locator('[data-testid="price-chart"]')
    assert chart.get_attribute("data-candles") == str(len(served["candles"])) == "300"
    assert chart.get_attribute("data-timeframe") == "1m" and chart.get_attribute("data-markers") == "0"
    assert page.evaluate(CANVAS_SIZE, "price-chart") > 100_000  # drawn, not a 0x0 canvas
    assert page.input_value("#chart-timeframe") == "1m"
    assert "1h" in page.eval_on_selector_all("#chart-timeframe option", "os => os.map(o => o.value)")
    assert page.text_content("#chart-status").startswith("300 1m candles of BTC-PERP (replay prices)")
    page.wait_for_function("window.__bluefinai.equityPoints > 0", timeout=10_000)
    assert page.evaluate(CANVAS_SIZE, "equity-chart") > 50_000

    # another timeframe: its own candles
    page.select_option("#chart-timeframe", "5m")
    page.wait_for_function("window.__bluefinai.timeframe === '5m'", timeout=10_000)
    five = stack.api("/api/candles?symbol=BTC-PERP&timeframe=5m&limit=300").json()["candles"]
    assert chart.get_attribute("data-candles") == str(len(five)) == "60"

    response = stack.alert({"id": "e2e-chart-1", "symbol": "BTCUSDT.P", "action": "buy", "strategy": "e2e"})
    assert response.status_code == 202
    # the entry as a marker, the stop and the target (and the entry) as price lines, pushed by socket.io
    page.wait_for_function(
        "window.__bluefinai.markers >= 1 && window.__bluefinai.priceLines >= 3", timeout=15_000
    )
    overlays = stack.api("/api/chart/overlays?symbol=BTC-PERP&timeframe=5m").json()
    assert {line["kind"] for line in overlays["price_lines"]} == {"entry", "stop", "target"}
    assert chart.get_attribute("data-price-lines") == str(len(overlays["price_lines"]))
    assert chart.get_attribute("data-markers") == str(len(overlays["markers"]))

    # the close: an exit marker, no stop or target left, and the equity curve takes the trade
    response = stack.alert({"id": "e2e-chart-2", "symbol": "BTCUSDT.P", "action": "close", "strategy": "e2e"})
    assert response.status_code == 202
    page.wait_for_selector("#trades tbody tr", timeout=15_000)
    page.wait_for_function(
        "window.__bluefinai.markers >= 2 && window.__bluefinai.priceLines === 0", timeout=15_000
    )
    (trade,) = stack.api("/api/trades").json()["trades"]
    equity = stack.api("/api/equity").json()
    assert abs(equity["points"][-1]["equity"] - (10_000.0 + trade["pnl"])) < 1e-6
    latest = (
        equity["current"]
        if equity["current"]["time"] > equity["points"][-1]["time"]
        else equity["points"][-1]
    )
    page.wait_for_function(
        f"Math.abs(window.__bluefinai.lastEquity - {latest['equity']}) < 1e-6", timeout=10_000
    )
    assert int(page.get_attribute('[data-testid="equity-chart"]', "data-points")) >= len(equity["points"])
    assert not page.errors
    page.screenshot(path=str(tmp_path / "chart-with-trade.png"), full_page=True)
    assert (tmp_path / "chart-with-trade.png").stat().st_size > 10_000


def test_the_dashboard_fits_a_390_px_phone(stack: RunningStack, browser: Any, tmp_path: Path) -> None:
    page = open_dashboard(browser, stack, 390, 844)
    page.wait_for_selector("#orders tbody", state="attached")
    response = stack.alert({"id": "e2e-phone-1", "symbol": "BTCUSDT.P", "action": "buy", "strategy": "e2e"})
    assert response.status_code == 202
    page.wait_for_selector("#orders tbody tr td.status-FILLED", timeout=10_000)  # wide rows in the tables
    page.wait_for_function("window.__bluefinai.markers >= 1", timeout=15_000)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    box = page.locator('[data-testid="price-chart"]').bounding_box()
    assert box is not None and 300 <= box["width"] <= 390 and box["height"] >= 250
    assert page.evaluate(CANVAS_SIZE, "price-chart") > 50_000
    # the tables scroll inside their own panel instead
    assert page.evaluate(
        "(() => { const t = document.getElementById('orders'); return t.scrollWidth > t.parentElement.clientWidth; })()"
    )
    assert not page.errors
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    assert (tmp_path / "phone.png").stat().st_size > 10_000
