"""Walk-forward windows cover the period without gaps or overlap; the overfitting rule."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.optimize.walkforward import MIN_FOLD_CANDLES, make_folds, overfitting_warning
from shared.errors import InvalidInput

DAY = 86_400


@settings(max_examples=60, deadline=None)
@given(
    folds=st.integers(1, 5), train_frac=st.floats(0.3, 0.8), days=st.integers(5, 30),
    offset=st.integers(0, 10_000),
)  # fmt: skip
def test_folds_tile_the_period(folds: int, train_frac: float, days: int, offset: int) -> None:
    begin = 1_640_995_200 + offset * 60
    end = begin + days * DAY
    windows = make_folds(begin, end, folds, train_frac, 60)
    assert [f.number for f in windows] == list(range(1, folds + 1))
    assert windows[0].train[0].timestamp() == begin and windows[-1].test[1].timestamp() == end
    for fold, following in itertools.pairwise(windows):
        assert fold.test[1] == following.train[0]
    for fold in windows:
        assert fold.train[1] == fold.test[0]
        train, test = (
            (fold.train[1] - fold.train[0]).total_seconds(),
            (fold.test[1] - fold.test[0]).total_seconds(),
        )
        assert train % 60 == 0 and test % 60 == 0
        assert train / (train + test) == pytest.approx(train_frac, abs=0.01)


def test_bad_folds_are_refused() -> None:
    with pytest.raises(InvalidInput, match="--train-frac"):
        make_folds(0, 10 * DAY, 3, 1.0, 60)
    with pytest.raises(InvalidInput, match="must be at least 1"):
        make_folds(0, 10 * DAY, 0, 0.7, 60)
    with pytest.raises(InvalidInput, match=f"< {MIN_FOLD_CANDLES}"):
        make_folds(0, 3 * 3600, 5, 0.9, 60)


def test_overfitting_rule_maximised() -> None:
    assert overfitting_warning("sharpe", "maximize", [(2.0, 1.5), (1.0, 0.8)]) is None
    warning = overfitting_warning("sharpe", "maximize", [(2.0, 0.9), (1.0, 0.4)])  # OOS 0.65 < 50 % of 1.5
    assert warning is not None and "likely overfit" in warning and "fold(s) 1, 2" in warning
    flip = overfitting_warning("return_pct", "maximize", [(3.0, -1.0), (1.0, 1.2)])
    assert flip is not None and "fold(s) 1 " in flip  # a sign flip in one fold pulls the mean under half
    assert "not positive" in str(overfitting_warning("return_pct", "maximize", [(-1.0, 2.0)]))
    assert "undefined out of sample" in str(overfitting_warning("sharpe", "maximize", [(1.0, None)]))


def test_overfitting_rule_minimised() -> None:
    assert overfitting_warning("max_drawdown", "minimize", [(0.05, 0.09)]) is None
    warning = overfitting_warning("max_drawdown", "minimize", [(0.05, 0.11)])
    assert warning is not None and "more than 2x" in warning
    assert overfitting_warning("max_drawdown", "minimize", [(0.0, 0.01)]) is not None
