"""Funding payments the exchange settled on our positions, booked once each (by their key) into
``funding_payments`` with a journal event, and into the trade of the position that paid or received them.

Bluefin Pro settles funding hourly in the account and reports it in the account's funding history
(``book_funding``, from the engine's loop); the paper exchange settles its own funding in its ledger and
hands each payment over as it settles it (``book_simulated_funding``, before the candle's fills are folded
in, as the exchange settles funding before it works the candle's orders).

Which trade a payment belongs to (``attribute_funding``): the market's open position when it was opened
before the settlement, else the market's closed trade that was open then (a payment reported after its
position closed), else none (a payment from before our books: logged, not booked into a trade).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from agent.journal.events import Journal
from agent.journal.store import Records, Store
from shared.db import FundingRow
from shared.exchange.base import Exchange, FundingPayment
from shared.logs import log_event

logger = logging.getLogger(__name__)
FIRST_LOOK_BACK = timedelta(days=30)  # with nothing booked yet: how much of the exchange's history to book
OVERLAP = timedelta(hours=2)  # read again before the latest booked one: a payment may show up late


def attribute_funding(records: Records, symbol: str, amount: float, time: datetime) -> str:
    """Add a funding payment to the trade it belongs to (see the module docstring); where it went:
    ``position`` (the open one), ``trade`` (a closed one: its pnl and R updated) or "" (none)."""
    row = records.position(symbol)
    if row is not None and row.quantity != 0 and row.opened_at is not None and row.opened_at < time:
        row.funding = (row.funding or 0.0) + amount
        return "position"
    trade = records.trade_at(symbol, time)
    if trade is None:
        return ""
    trade.funding = (trade.funding or 0.0) + amount
    trade.pnl += amount
    if trade.initial_risk:
        trade.r_multiple = trade.pnl / trade.initial_risk
    return "trade"


def _book(store: Store, journal: Journal, payments: Sequence[FundingPayment]) -> list[float]:
    """Book each payment once (by its key) into funding_payments and its trade; the amounts of the new."""
    booked: list[float] = []
    unattributed = 0
    batch = journal.pending()
    with store.transaction() as records:
        for payment in payments:
            row = FundingRow(key=payment.key, symbol=payment.symbol, amount=payment.amount, rate=payment.rate,
                             side=payment.side, time=payment.time)  # fmt: skip
            if records.add_funding(row):
                booked.append(payment.amount)
                if not attribute_funding(records, payment.symbol, payment.amount, payment.time):
                    unattributed += 1
                batch.record(
                    records,
                    "funding",
                    {
                        "symbol": payment.symbol,
                        "amount": payment.amount,
                        "rate": payment.rate,
                        "time": payment.time.isoformat(),
                    },
                )
    batch.flush()
    if unattributed:
        log_event(logger, "funding_without_trade", logging.WARNING, payments=unattributed)
    return booked


def book_funding(store: Store, exchange: Exchange, journal: Journal, now: datetime) -> int:
    """Book the payments since the latest one booked (or the last FIRST_LOOK_BACK), each once by its key;
    how many were new."""
    with store.transaction() as records:
        latest = records.latest_funding()
    payments = exchange.funding_payments(latest - OVERLAP if latest else now - FIRST_LOOK_BACK)
    if not payments:
        return 0
    booked = _book(store, journal, payments)
    if booked:
        log_event(logger, "funding_booked", payments=len(booked), amount=round(sum(booked), 6))
    return len(booked)


def book_simulated_funding(store: Store, exchange: Exchange, journal: Journal) -> int:
    """Book what a simulated exchange settled since the last call (``drain_funding``); how many were new."""
    venue = exchange.simulated_venue()
    payments: list[FundingPayment] = venue.drain_funding() if venue is not None else []
    return len(_book(store, journal, payments)) if payments else 0
