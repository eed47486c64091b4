"""A decision's whole story in headless Chromium, behind nginx, on the real stack: clicking a decision row
opens the view of GET /api/decisions/<id>: the alert, the analyst, the risk verdict with each rule's size and
the binding one, the orders, the fills, what each shadow book did with the signal and, once the position is
closed, the realised outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import TOKEN, wait_for
from tests.stack import RunningStack

pytestmark = pytest.mark.e2e
DETAIL = '[data-testid="decision-detail"]'


def test_clicking_a_decision_shows_its_whole_story(stack: RunningStack, browser: Any, tmp_path: Path) -> None:
    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#connection-state[data-state="connected"]', timeout=10_000)
    assert page.is_hidden(DETAIL)
    response = stack.alert({"id": "e2e-story-1", "symbol": "BTCUSDT.P", "action": "buy", "strategy": "story"})
    signal_id = response.json()["signal_id"]
    row = page.wait_for_selector(
        f'#decisions tbody tr[data-signal-id="{signal_id}"][data-decision-id]', timeout=15_000
    )
    decision_id = row.get_attribute("data-decision-id")
    wait_for(lambda: stack.api("/api/positions").json()["positions"], timeout_s=10)
    story = stack.api(f"/api/decisions/{decision_id}").json()
    assert story["signal"]["id"] == signal_id and story["alert"]["strategy"] == "story"
    assert "passphrase" not in story["alert"]
    binding = story["decision"]["risk"]["binding"]
    # the shadow books decide the signal just after the real one
    wait_for(lambda: stack.api(f"/api/decisions/{decision_id}").json()["shadow"], timeout_s=10)

    row.click()
    page.wait_for_selector(f'{DETAIL}[data-state="loaded"][data-decision-id="{decision_id}"]', timeout=10_000)
    text = page.text_content(DETAIL)
    assert f"Decision #{decision_id} · signal #{signal_id}" in text
    assert '"strategy": "story"' in page.text_content(f'{DETAIL} [data-part="signal"]')
    assert "no AI call: the rules decided" in page.text_content(f'{DETAIL} [data-part="ai"]')
    sizes = page.query_selector_all(f'{DETAIL} [data-testid="risk-sizes"] tbody tr')
    assert len(sizes) == len(story["decision"]["risk"]["sizes"]) >= 2
    assert page.text_content(f'{DETAIL} [data-testid="risk-sizes"] tr[data-binding="true"] td') == binding
    funding = story["decision"]["risk"]["funding"]  # the verdict's expected funding over the horizon
    assert f"bps over {funding['horizon_hours']:g} h" in page.text_content(f'{DETAIL} [data-part="risk"]')
    orders = page.text_content(f'{DETAIL} [data-part="orders"]')
    assert "entry" in orders and "FILLED" in orders and "stop loss" in orders
    assert (
        len(page.query_selector_all(f'{DETAIL} [data-part="fills"] tbody tr:not(.empty)'))
        == len(story["fills"])
        >= 1
    )
    assert "open or none" in page.text_content(f'{DETAIL} [data-part="outcome"]')
    # the shadow books' trades of the signal: the follow baseline (and the rules analyst) opened a long
    shadows = page.query_selector_all(f'{DETAIL} [data-testid="shadow-outcomes"] tbody tr[data-analyst]')
    assert len(shadows) == len(stack.api(f"/api/decisions/{decision_id}").json()["shadow"]) >= 1
    assert "follow" in [r.get_attribute("data-analyst") for r in shadows]
    follow = page.text_content(f'{DETAIL} [data-testid="shadow-outcomes"] tr[data-analyst="follow"]')
    assert "long opened" in follow and "$0" in follow
    page.screenshot(path=str(tmp_path / "decision-open.png"), full_page=True)

    # closed: the outcome is realised
    closed = requests.post(
        f"{stack.base}/api/positions/BTC-PERP/close",
        json={},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert closed.status_code == 200, closed.text
    pnl = wait_for(
        lambda: stack.api(f"/api/decisions/{decision_id}").json()["outcome"]["realised_pnl"], timeout_s=10
    )
    page.click('[data-testid="decision-detail-close"]')
    assert page.is_hidden(DETAIL)
    page.click(f'#decisions tbody tr[data-decision-id="{decision_id}"]')
    page.wait_for_selector(f'{DETAIL}[data-state="loaded"]', timeout=10_000)
    outcome = page.text_content(f'{DETAIL} [data-part="outcome"]')
    shown = f"{pnl:,.2f}".rstrip("0").rstrip(".")  # as the page shows it: at most 2 decimals
    assert f"realised PnL{shown}" in outcome and "manual:" in outcome
    page.screenshot(path=str(tmp_path / "decision-closed.png"), full_page=True)
    assert (tmp_path / "decision-closed.png").stat().st_size > 10_000

    # a liquidation_alert on the stream (as agent.engine.liquidation_alert publishes it) raises a banner;
    # the one that says the position moved back out clears it
    events = f"http://127.0.0.1:{stack.env['SOCKET_PORT']}/internal/events"
    near = {"symbol": "BTC-PERP", "quantity": 0.1, "mark": 31_400.0, "liquidation": 30_000.0, "atr": 500.0,
            "distance_atr": 2.8, "threshold_atr": 3.0, "near": True}  # fmt: skip
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.post(events, json={"event": "liquidation_alert", "data": near}, headers=auth).ok
    banner = page.wait_for_selector("#alert-liquidation-BTC-PERP", timeout=10_000)
    assert "Liquidation near: BTC-PERP long 0.1" in banner.text_content()
    assert "2.80 ATRs from the liquidation price 30,000.00" in banner.text_content()
    out = {**near, "mark": 32_000.0, "distance_atr": 4.0, "near": False}
    assert requests.post(events, json={"event": "liquidation_alert", "data": out}, headers=auth).ok
    page.wait_for_selector("#alert-liquidation-BTC-PERP", state="detached", timeout=10_000)
    assert not errors
