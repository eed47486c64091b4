"""The order state machine. Every status change of an order row goes through ``transition``.

PENDING_SUBMIT -> OPEN | PARTIALLY_FILLED | FILLED | CANCELED | REJECTED | LOST
OPEN -> PARTIALLY_FILLED | FILLED | CANCELED | LOST
PARTIALLY_FILLED -> PARTIALLY_FILLED | FILLED | CANCELED | LOST
LOST -> OPEN | PARTIALLY_FILLED | FILLED | CANCELED   (found again later: the exchange is the truth)
EXTERNAL -> OPEN | PARTIALLY_FILLED | FILLED | CANCELED (an order found on the exchange that we never placed)
FILLED, CANCELED, REJECTED: final.
"""

from __future__ import annotations

from shared.errors import Fatal
from shared.models import OrderStatus

S = OrderStatus
ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_SUBMIT: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.REJECTED, S.LOST}),
    S.OPEN: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.LOST}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.LOST}),
    S.LOST: frozenset({S.LOST, S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED}),
    S.EXTERNAL: frozenset({S.EXTERNAL, S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED}),
    S.FILLED: frozenset({S.FILLED}),
    S.CANCELED: frozenset({S.CANCELED}),
    S.REJECTED: frozenset({S.REJECTED}),
}
NOT_FOUND_LIMIT = 3  # an order the exchange has not seen this many times in a row becomes LOST


class IllegalTransition(Fatal):
    """A status change the state machine forbids: our books and the exchange disagree; stop and look."""


def transition(current: str, new: OrderStatus) -> OrderStatus:
    """The new status if the move is allowed; raises IllegalTransition otherwise."""
    present = OrderStatus(current)
    if new not in ALLOWED[present]:
        raise IllegalTransition(f"order status {present} cannot become {new}")
    return new
