from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.accounting import apply_fill
from shared.models import Position, Side

FLAT = Position("BTC-PERP", 0.0, 0.0)


def test_adding_averages_the_entry() -> None:
    effect = apply_fill(Position("BTC-PERP", 1.0, 100.0), Side.BUY, 1.0, 110.0)
    assert effect.position.quantity == 2.0 and effect.position.entry_price == pytest.approx(105.0)
    assert effect.realized_pnl == 0.0


def test_closing_a_short_realises_pnl() -> None:
    effect = apply_fill(Position("BTC-PERP", -2.0, 100.0), Side.BUY, 2.0, 90.0)
    assert effect.position.quantity == 0.0
    assert effect.realized_pnl == pytest.approx(20.0)
    assert effect.closed_quantity == 2.0


def test_flip_closes_then_opens_at_the_fill_price() -> None:
    effect = apply_fill(Position("BTC-PERP", 1.0, 100.0), Side.SELL, 3.0, 120.0)
    assert effect.realized_pnl == pytest.approx(20.0)
    assert effect.position.quantity == pytest.approx(-2.0)
    assert effect.position.entry_price == 120.0


def test_rejects_non_positive_quantity() -> None:
    with pytest.raises(ValueError):
        apply_fill(FLAT, Side.BUY, 0.0, 100.0)


fills = st.lists(
    st.tuples(st.sampled_from(list(Side)), st.floats(0.001, 10), st.floats(1, 1e5)), min_size=1, max_size=30
)


@given(fills)
def test_realised_plus_unrealised_equals_cash_flow(sequence: list[tuple[Side, float, float]]) -> None:
    """No sequence of fills creates or destroys money: PnL equals the signed cash flow marked to market."""
    position, realized, cash = FLAT, 0.0, 0.0
    for side, qty, price in sequence:
        effect = apply_fill(position, side, qty, price)
        position, realized = effect.position, realized + effect.realized_pnl
        cash -= side.sign * qty * price
    mark = sequence[-1][2]
    assert realized + position.unrealized_pnl(mark) == pytest.approx(
        cash + position.quantity * mark, rel=1e-6, abs=1e-3
    )
