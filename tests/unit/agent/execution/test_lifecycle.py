from __future__ import annotations

import pytest

from agent.execution.lifecycle import ALLOWED, IllegalTransition, transition
from shared.models import OrderStatus as S


def test_every_status_has_rules_and_finals_stay_final() -> None:
    assert set(ALLOWED) == set(S)
    for final in (S.FILLED, S.CANCELED, S.REJECTED):
        assert ALLOWED[final] == {final}


@pytest.mark.parametrize(
    ("current", "new"),
    [(S.PENDING_SUBMIT, S.FILLED), (S.PENDING_SUBMIT, S.LOST), (S.OPEN, S.PARTIALLY_FILLED), (S.LOST, S.FILLED),
     (S.EXTERNAL, S.CANCELED)],
)  # fmt: skip
def test_allowed(current: S, new: S) -> None:
    assert transition(current.value, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [(S.FILLED, S.OPEN), (S.CANCELED, S.FILLED), (S.REJECTED, S.OPEN), (S.OPEN, S.PENDING_SUBMIT),
     (S.PARTIALLY_FILLED, S.OPEN), (S.OPEN, S.REJECTED)],
)  # fmt: skip
def test_forbidden(current: S, new: S) -> None:
    with pytest.raises(IllegalTransition):
        transition(current.value, new)
