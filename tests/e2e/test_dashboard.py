"""The dashboard in headless Chromium, behind nginx, fed by the real stack."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN, wait_for
from tests.stack import RunningStack

pytestmark = pytest.mark.e2e


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


def test_risk_panel_kill_switch_and_reset(stack: RunningStack, browser: Any, tmp_path: Path) -> None:
    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#connection-state[data-state="connected"]', timeout=10_000)

    # the risk state arrives with the status/risk events (every ~2 s)
    badge = page.wait_for_selector('#trading-state[data-state="ACTIVE"]', timeout=10_000)
    assert badge.text_content() == "ACTIVE"
    assert not page.is_visible("#reset-active")
    page.wait_for_function("document.getElementById('risk-equity').textContent !== '—'", timeout=10_000)
    limits = stack.api("/api/risk").json()["limits"]
    assert page.text_content('[data-limit="tolerance"]') == limits["tolerance"]
    assert page.text_content('[data-limit="max_daily_loss"]').endswith("%")
    assert page.text_content("#risk-var-note") == "VaR / ES: no open positions, nothing at risk."
    if stack.api("/api/risk").json()["state"]["day"] is None:  # no candle folded yet at REPLAY_SPEED=1
        assert page.text_content("#risk-daily-return") == "no start-of-day equity yet"
    assert page.text_content("#risk-positions tbody") == "no open positions"
    page.wait_for_function("document.getElementById('perf-trades').textContent === '0'", timeout=10_000)
    assert page.text_content("#perf-win-rate") == "—"  # no trade yet: nothing to average

    response = stack.alert({"id": "e2e-kill-1", "symbol": "BTCUSDT.P", "action": "buy", "strategy": "e2e"})
    assert response.status_code == 202
    row = page.wait_for_selector('#risk-positions tbody tr[data-symbol="BTC-PERP"]', timeout=15_000)
    page.wait_for_function(
        """() => { const c = document.querySelector('#risk-positions tr[data-symbol="BTC-PERP"] td.liq-price');
                   return c && c.textContent !== '—'; }""",
        timeout=10_000,
    )
    liquidation = float(
        page.text_content('#risk-positions tr[data-symbol="BTC-PERP"] td.liq-price').replace(",", "")
    )
    mark = float(row.query_selector("td:nth-child(3)").text_content().replace(",", ""))
    assert 0 < liquidation < mark  # a long is liquidated below its mark
    page.wait_for_function("document.getElementById('risk-exposure').textContent !== '0.00'", timeout=10_000)
    assert page.text_content("#risk-vetoes") == "0"
    page.screenshot(path=str(tmp_path / "risk-open.png"), full_page=True)

    # the kill switch, closing positions
    page.check("#kill-close")
    page.click("#kill-switch")
    page.wait_for_selector('#trading-state[data-state="HALTED"]', timeout=10_000)
    assert dialogs and "CLOSE EVERY OPEN POSITION" in dialogs[-1]
    page.wait_for_selector('#control-result[data-kind="halted"]', timeout=10_000)
    # the protective orders the position manager placed for the position are cancelled with it
    assert re.fullmatch(
        r"halted: \d+ orders? cancelled, 1 position closed", page.text_content("#control-result")
    )
    assert page.text_content("#trading-state").startswith("HALTED: kill switch")
    assert page.text_content("#trading-state").endswith("(until reset)")
    wait_for(lambda: stack.api("/api/positions").json()["positions"] == [], timeout_s=10)
    assert stack.api("/api/risk").json()["state"]["state"] == "HALTED"
    page.wait_for_selector("#risk-positions tbody tr.empty", timeout=10_000)
    page.wait_for_function("document.getElementById('perf-trades').textContent === '1'", timeout=10_000)
    page.wait_for_selector("#reset-active", state="visible", timeout=5_000)
    page.screenshot(path=str(tmp_path / "dashboard-halted.png"), full_page=True)
    assert (tmp_path / "dashboard-halted.png").stat().st_size > 10_000

    # reset to ACTIVE
    page.click("#reset-active")
    page.wait_for_selector('#trading-state[data-state="ACTIVE"]', timeout=10_000)
    assert "Reset trading to ACTIVE" in dialogs[-1]
    page.wait_for_selector("#reset-active", state="hidden", timeout=5_000)
    assert page.text_content("#control-result") == "reset: trading is ACTIVE"
    assert stack.api("/api/risk").json()["state"]["state"] == "ACTIVE"
