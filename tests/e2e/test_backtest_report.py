"""report.html opened from file:// in headless Chromium (no server, no network): the interactive charts
are drawn, at a desktop width and on a 390 px phone without sideways scrolling of the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.backtest.report import ReportFiles
from tests.backtest_runs import write_month_report

pytestmark = pytest.mark.e2e
NO_SIDEWAYS_SCROLL = "document.scrollingElement.scrollWidth <= window.innerWidth"


@pytest.fixture(scope="module")
def month_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportFiles, dict[str, Any]]:
    return write_month_report(tmp_path_factory.mktemp("run"))


@pytest.mark.parametrize("width", [1280, 390])
def test_report_draws_its_charts_offline(
    browser: Any, tmp_path: Path, width: int, month_report: tuple[ReportFiles, dict[str, Any]]
) -> None:
    files, report = month_report
    context = browser.new_context(viewport={"width": width, "height": 900})
    requests: list[str] = []
    context.route("**/*", lambda route: (requests.append(route.request.url), route.continue_()))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(files.report_html.as_uri())
    for hook in ("report-price-chart", "report-equity-chart", "report-drawdown-chart"):
        page.wait_for_selector(f'[data-testid="{hook}"] canvas', timeout=10_000)
        box = page.locator(f'[data-testid="{hook}"]').bounding_box()
        assert box is not None and box["width"] <= width and box["height"] > 150
    drawn = page.evaluate("window.__report")
    assert drawn["drawn"] == ["price", "equity", "drawdown"]
    assert drawn["candles"] == 2_977  # 31 days of 1m candles from 23:01, drawn as 15m ones
    assert drawn["markers"] == 2 * report["trade_count"] and report["trade_count"] >= 30
    assert page.evaluate(NO_SIDEWAYS_SCROLL), page.evaluate("document.scrollingElement.scrollWidth")
    change = report["breakdowns"]["market_change"]["BTC-PERP"]["change"]
    assert f"{change * 100:,.2f}%" in page.text_content('[data-testid="report-market-change"]')
    trades_box = page.locator('[data-testid="report-trades"] .scroll')
    if width == 390:  # the trades table is wider than a phone: it scrolls in its own box
        assert trades_box.evaluate("el => el.scrollWidth > el.clientWidth")
    assert requests == [files.report_html.as_uri()]  # nothing fetched: the library and data are inline
    shot = tmp_path / f"report-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    assert not errors
    context.close()
