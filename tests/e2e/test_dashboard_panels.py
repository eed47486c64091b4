"""The algos, performance breakdowns, live event feed, trading state control and the remaining tables'
filters in headless Chromium, behind nginx, on the real stack; then the page at a phone's 390 px."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import TOKEN, wait_for
from tests.stack import RunningStack

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def post_events(stack: RunningStack, events: list[dict[str, Any]]) -> None:
    """Events straight to the websocket service, as the agent's poster sends them (nginx hides /internal)."""
    url = f"http://127.0.0.1:{stack.env['SOCKET_PORT']}/internal/events"
    assert requests.post(url, json={"events": events}, headers=AUTH, timeout=5).status_code == 200


def feed_texts(page: Any) -> list[str]:
    return page.eval_on_selector_all("#feed li", "items => items.map(i => i.textContent)")  # type: ignore[no-any-return]


def test_algos_breakdowns_feed_state_and_tables(stack: RunningStack, browser: Any, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#connection-state[data-state="connected"]', timeout=10_000)
    # one trade, then a close with nothing to close (a veto): the breakdowns have something to show
    for n, action in enumerate(("buy", "close", "close")):
        assert (
            stack.alert({"id": f"e2e-panels-{n}", "symbol": "BTCUSDT.P", "action": action}).status_code == 202
        )
    wait_for(lambda: stack.api("/api/performance").json()["vetoes"]["total"] == 1, timeout_s=20)

    # the event feed: the alerts' signals arrived live; a log event and a pause
    page.wait_for_function(
        "document.querySelectorAll('#feed li[data-type=\"signal\"]').length >= 3", timeout=10_000
    )
    page.click("#feed-pause")
    post_events(stack, [{"event": "log", "data": {"ts": "2026-01-01T00:00:00+00:00", "level": "error",
                                                  "service": "agent", "logger": "e2e", "event": "e2e_problem",
                                                  "detail": "posted by the test"}}])  # fmt: skip
    page.wait_for_function("document.querySelector('#feed-count').textContent.startsWith('paused · 1 new')")
    assert not any("e2e_problem" in text for text in feed_texts(page))
    page.click("#feed-pause")
    page.wait_for_selector('#feed li[data-type="log"][data-level="error"]', timeout=5_000)
    assert any("agent e2e_problem detail=posted by the test" in text for text in feed_texts(page))
    page.select_option("#feed-filter", "log")
    assert all(
        kind == "log" for kind in page.eval_on_selector_all("#feed li", "l => l.map(i => i.dataset.type)")
    )

    # algos: a refusal with its rule (and the agent's warning in the feed), a TWAP to the end, an iceberg cancelled
    page.fill('#algo-form input[name="quantity"]', "50")
    page.click('[data-testid="start-algo"]')
    page.wait_for_selector('#algo-result[data-kind="error"]', timeout=10_000)
    refused = page.text_content("#algo-result")
    assert refused.startswith("Algo refused — vetoed by risk: ") and "(rule: " in refused
    assert dialogs[-1].startswith("Start a TWAP: BUY 50 BTC-PERP in 5 slices over 300 s?")
    page.wait_for_function(
        "[...document.querySelectorAll('#feed li[data-type=\"log\"]')].some(l => l.textContent.includes('algo_vetoed'))",
        timeout=10_000,
    )
    page.screenshot(path=str(shots / "algo-refused.png"), full_page=True)
    page.fill('#algo-form input[name="quantity"]', "0.002")
    page.fill('#algo-form input[name="slices"]', "2")
    page.fill('#algo-form input[name="duration_s"]', "600")
    page.click('[data-testid="start-algo"]')
    page.wait_for_selector('#algo-result[data-kind="ok"]', timeout=10_000)
    twap = page.text_content("#algo-result").split()[2].rstrip(":")
    twap_row = f'#algos tr[data-algo-id="{twap}"]'
    page.wait_for_selector(f'{twap_row}[data-status="RUNNING"] [data-testid="cancel-algo"]', timeout=10_000)
    # its first slice went out at once at the touch (the mark: the replay has no book) and filled
    page.wait_for_selector(f'{twap_row}[data-filled="0.001"]', timeout=10_000)
    assert page.text_content(f"{twap_row} [data-field=filled]").strip() == "0.001 / 0.002 (50%)"
    assert page.text_content(f"{twap_row} [data-field=slices]") == "1 of 2"  # the next one in 300 s
    # an iceberg resting below the market: one visible piece at a time, nothing filled yet
    mark = stack.api("/api/market").json()["markets"][0]["price"]
    page.select_option('#algo-form select[name="kind"]', "iceberg")
    page.fill('#algo-form input[name="visible_quantity"]', "0.001")
    page.fill('#algo-form input[name="limit_price"]', str(round(mark * 0.9, 1)))
    page.click('[data-testid="start-algo"]')
    page.wait_for_selector('#algo-result[data-kind="ok"]', timeout=10_000)
    assert dialogs[-1].startswith("Start an iceberg: BUY 0.002 BTC-PERP, 0.001 visible at a time, limit ")
    iceberg = page.text_content("#algo-result").split()[2].rstrip(":")
    row = f'#algos tr[data-algo-id="{iceberg}"]'
    page.wait_for_selector(f'{row}[data-status="RUNNING"] [data-testid="cancel-algo"]', timeout=10_000)
    assert page.text_content(f"{row} [data-field=filled]").strip() == "0 / 0.002 (0%)"
    assert page.text_content(f"{row} [data-field=slices]") == "1 piece of 0.001"
    page.screenshot(path=str(shots / "algos.png"), full_page=True)
    # the orders table, filtered to working orders, as the API counts them
    page.select_option('#orders-tools select[data-filter="state"]', "working")
    working = stack.api("/api/tables/orders?state=working").json()
    page.wait_for_selector(f'#orders-tools[data-total="{working["total"]}"]', timeout=5_000)
    shown_orders = page.eval_on_selector_all(
        "#orders tbody tr[data-client-id]", "r => r.map(x => x.dataset.clientId)"
    )
    assert shown_orders == [o["client_id"] for o in working["rows"]]
    page.click(f'{row} [data-testid="cancel-algo"]')
    page.wait_for_selector(f'{row}[data-status="CANCELED"]', timeout=10_000)
    assert page.text_content("#algo-result") == f"Cancel {iceberg}: CANCELED, 0 of 0.002 filled"
    page.click(f'{twap_row} [data-testid="cancel-algo"]')
    page.wait_for_selector(f'{twap_row}[data-status="CANCELED"]', timeout=10_000)
    assert page.text_content("#algo-result") == f"Cancel {twap}: CANCELED, 0.001 of 0.002 filled"
    assert dialogs[-1].startswith(f"Cancel the twap {twap} (BUY 0.002 BTC-PERP, ")
    assert stack.api(f"/api/algos/{twap}").json()["status"] == "CANCELED"

    # performance breakdowns match the API
    page.wait_for_selector('#perf-by-source tr[data-group="tradingview"]', timeout=20_000)
    perf = stack.api("/api/performance").json()
    source = perf["by_signal_source"]["tradingview"]
    shown = '#perf-by-source tr[data-group="tradingview"]'
    assert page.text_content(f"{shown} [data-field=trades]") == str(source["trade_count"])
    assert page.text_content(f"{shown} [data-field=pnl]") == f"{source['pnl_gross']:,.2f}"
    (reason,) = perf["by_exit_reason"]
    assert page.text_content(f'#perf-by-exit tr[data-group="{reason}"] [data-field=trades]') == "1"
    assert page.get_attribute("#perf-by-analyst", "data-groups") == str(len(perf["by_analyst"]))
    ((rule, vetoes),) = perf["vetoes"]["by_rule"].items()
    assert page.text_content(f'#vetoes-by-rule tr[data-group="{rule}"] [data-field=vetoes]') == str(vetoes)
    # the decisions table, vetoed only
    page.select_option('#decisions-tools select[data-filter="verdict"]', "vetoed")
    page.wait_for_selector('#decisions-tools[data-total="1"]', timeout=5_000)
    assert page.eval_on_selector_all("#decisions tbody tr", "r => r.map(x => x.dataset.verdict)") == [
        "vetoed"
    ]
    # fills: page 1 read again after the orders' events, the algo's slice among them
    fills = stack.api("/api/tables/fills").json()
    page.wait_for_selector(f'#fills-tools[data-total="{fills["total"]}"]', timeout=10_000)
    shown_fills = page.eval_on_selector_all("#fills tbody tr", "r => r.map(x => x.dataset.key)")
    assert shown_fills == [f["trade_id"] for f in fills["rows"]]

    # the trading state: reduce-only, halted, active again, each confirmed
    for label, state in (("reduce only", "REDUCING"), ("halted", "HALTED"), ("active", "ACTIVE")):
        assert page.text_content(f'#state-control button[data-state="{state}"]') == label
        page.click(f'#state-control button[data-state="{state}"]')
        page.wait_for_selector(f'#state-control[data-state="{state}"]', timeout=5_000)
        assert dialogs[-1].startswith(f"Switch trading to {state}")
        assert page.get_attribute(f'#state-control button[data-state="{state}"]', "aria-pressed") == "true"
        assert stack.api("/api/risk").json()["state"]["state"] == state
        page.wait_for_function(  # the answer of the POST (the status event may come first)
            f"document.querySelector('#control-result').textContent.startsWith('trading is {state}')",
            timeout=5_000,
        )
        if state == "HALTED":
            page.screenshot(path=str(shots / "halted.png"), full_page=True)
    page.screenshot(path=str(shots / "panels.png"), full_page=True)

    # a phone: nothing scrolls the page sideways
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    phone.on("pageerror", lambda error: errors.append(str(error)))
    phone.goto(f"{stack.base}/#token={TOKEN}")
    phone.wait_for_selector('#breakdowns-panel[data-state="loaded"]', timeout=20_000)
    phone.wait_for_selector("#algos tbody tr[data-algo-id]", timeout=10_000)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(shots / "phone.png"), full_page=True)
    assert all((shots / n).stat().st_size > 10_000 for n in ("algo-refused.png", "algos.png", "halted.png",
                                                              "panels.png", "phone.png"))  # fmt: skip
    assert not errors
