"""Funding payments the exchange settled on our positions, booked once each (by their key) into
``funding_payments`` with a journal event. Bluefin Pro settles funding hourly in the account and reports it
in the account's funding history; the paper exchange books its own funding in its ledger and reports none
here."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from agent.journal import Journal
from agent.store import Store
from shared.db import FundingRow
from shared.exchange.base import Exchange
from shared.logs import log_event

logger = logging.getLogger(__name__)
FIRST_LOOK_BACK = timedelta(days=30)  # with nothing booked yet: how much of the exchange's history to book
OVERLAP = timedelta(hours=2)  # read again before the latest booked one: a payment may show up late


def book_funding(store: Store, exchange: Exchange, journal: Journal, now: datetime) -> int:
    """Book the payments since the latest one booked (or the last FIRST_LOOK_BACK), each once by its key;
    how many were new."""
    with store.transaction() as records:
        latest = records.latest_funding()
    payments = exchange.funding_payments(latest - OVERLAP if latest else now - FIRST_LOOK_BACK)
    if not payments:
        return 0
    booked: list[float] = []
    batch = journal.pending()
    with store.transaction() as records:
        for payment in payments:
            row = FundingRow(key=payment.key, symbol=payment.symbol, amount=payment.amount, rate=payment.rate,
                             side=payment.side, time=payment.time)  # fmt: skip
            if records.add_funding(row):
                booked.append(payment.amount)
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
    if booked:
        log_event(logger, "funding_booked", payments=len(booked), amount=round(sum(booked), 6))
    return len(booked)
