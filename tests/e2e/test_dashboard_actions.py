"""The position and order controls in headless Chromium, behind nginx, on the real stack: reduce, move the
stop, a refused move, cancel an order, close; each confirmed in a dialog and its result shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import TOKEN, wait_for
from tests.stack import RunningStack

pytestmark = pytest.mark.e2e
WORKING = ("PENDING_SUBMIT", "OPEN", "PARTIALLY_FILLED")


def working(stack: RunningStack, role: str) -> list[dict[str, Any]]:
    orders = stack.api("/api/orders").json()["orders"]
    return [o for o in orders if o["role"] == role and o["status"] in WORKING]


def held(stack: RunningStack) -> float:
    positions = stack.api("/api/positions").json()["positions"]
    return sum(p["quantity"] for p in positions if p["symbol"] == "BTC-PERP")


def test_reduce_move_stop_refusal_cancel_and_close(stack: RunningStack, browser: Any, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    answers: list[str] = []  # what the next prompts answer, in turn
    dialogs: list[str] = []

    def answer(dialog: Any) -> None:
        dialogs.append(dialog.message)
        if dialog.type == "prompt":
            dialog.accept(answers.pop(0))
        else:
            dialog.accept()

    page.on("dialog", answer)
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#connection-state[data-state="connected"]', timeout=10_000)
    assert stack.alert({"id": "e2e-act-1", "symbol": "BTCUSDT.P", "action": "buy"}).status_code == 202
    row = '#positions tbody tr[data-symbol="BTC-PERP"]'
    page.wait_for_selector(f'{row} [data-testid="close-position"]', timeout=15_000)
    wait_for(lambda: len(working(stack, "stop_loss")) == 1, timeout_s=10)
    before = held(stack)
    (stop,) = working(stack, "stop_loss")

    # reduce by 50 %
    answers.append("50")
    page.click(f'{row} [data-testid="reduce-position"]')
    page.wait_for_selector('#action-result[data-kind="ok"]', timeout=10_000)
    assert "Reduce the BTC-PERP position by 50%" in dialogs[-1]
    half = round(before / 2 // 0.001 * 0.001, 3)
    assert page.text_content("#action-result").startswith(f"Reduce BTC-PERP by 50%: closed {half:g}")
    wait_for(lambda: held(stack) == pytest.approx(before - half), timeout_s=10)
    page.wait_for_function(
        f"Math.abs(Number(document.querySelector('{row}').dataset.quantity) - {before - half!r}) < 1e-9",
        timeout=10_000,
    )
    page.screenshot(path=str(shots / "reduced.png"), full_page=True)

    # a stop moved further away is refused, with its rule
    (stop,) = working(stack, "stop_loss")
    answers.append(str(round(stop["trigger_price"] - 500, 1)))
    page.click(f'{row} [data-testid="move-stop"]')
    page.wait_for_selector('#action-result[data-kind="error"]', timeout=10_000)
    refused = page.text_content("#action-result")
    assert "refused" in refused and "widens the risk" in refused and "(rule: stop_widening)" in refused
    page.screenshot(path=str(shots / "refused.png"), full_page=True)
    assert [o["client_id"] for o in working(stack, "stop_loss")] == [stop["client_id"]]

    # moved towards the price
    mark = stack.api("/api/positions").json()["positions"][0]["mark_price"]
    tighter = round((stop["trigger_price"] + mark) / 2, 1)
    answers.append(str(tighter))
    page.click(f'{row} [data-testid="move-stop"]')
    page.wait_for_selector('#action-result[data-kind="ok"]', timeout=10_000)
    assert dialogs[-1].startswith("Move the BTC-PERP stop to ")
    wait_for(lambda: [o["trigger_price"] for o in working(stack, "stop_loss")] == [tighter], timeout_s=10)
    assert "stop moved to" in page.text_content("#action-result")

    # cancelling the protective stop is refused; a resting limit order is cancelled
    page.click(f'#orders tbody tr[data-client-id="{working(stack, "stop_loss")[0]["client_id"]}"] '
               '[data-testid="cancel-order"]')  # fmt: skip
    page.wait_for_selector('#action-result[data-kind="error"]', timeout=10_000)
    assert "(rule: protective_stop)" in page.text_content("#action-result")
    algo = requests.post(
        f"{stack.base}/api/algos", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5,
        json={"kind": "iceberg", "symbol": "BTC-PERP", "side": "BUY", "quantity": 0.002,
              "visible_quantity": 0.001, "limit_price": round(mark * 0.9, 1)},
    )  # fmt: skip
    assert algo.status_code == 201, algo.text
    orders = lambda: stack.api("/api/orders").json()["orders"]  # noqa: E731
    slice_id = wait_for(
        lambda: next((o["client_id"] for o in orders() if o["status"] == "OPEN" and o["side"] == "BUY"), None)
    )
    button = f'#orders tbody tr[data-client-id="{slice_id}"] [data-testid="cancel-order"]'
    page.wait_for_selector(button, timeout=10_000)
    page.click(button)
    page.wait_for_selector('#action-result[data-kind="ok"]', timeout=10_000)
    assert page.text_content("#action-result") == f"Cancel {slice_id}: order CANCELED"
    page.wait_for_selector(
        f'#orders tbody tr[data-client-id="{slice_id}"] td.status-CANCELED', timeout=10_000
    )
    assert page.query_selector(button) is None  # no cancel button on a finished order

    # close the rest
    page.click(f'{row} [data-testid="close-position"]')
    page.wait_for_selector('#action-result[data-kind="ok"]', timeout=10_000)
    assert "Close the whole BTC-PERP position" in dialogs[-1]
    assert page.text_content("#action-result").endswith("position flat")
    wait_for(lambda: held(stack) == 0, timeout_s=10)
    page.wait_for_selector(row, state="detached", timeout=10_000)
    page.screenshot(path=str(shots / "closed.png"), full_page=True)
    assert all(
        (shots / name).stat().st_size > 10_000 for name in ("reduced.png", "refused.png", "closed.png")
    )
    assert not errors and not answers
