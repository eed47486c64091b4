"""Where the paper exchange keeps its books: orders, fills, positions, the account and the cash ledger.

``DatabaseBooks`` (paper trading): the ``paper_*`` tables, so the books survive a restart. ``MemoryBooks``
(a backtest, which has nothing to recover): plain objects in dictionaries, the same rows without a database
round trip per read and write. The exchange's logic is the same over both; each transaction is atomic in
both (memory books put back what a failed transaction changed). A test runs the paper exchange's own tests
over both and compares a backtest with a paper run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import (
    Database,
    PaperAccountRow,
    PaperFillRow,
    PaperLedgerRow,
    PaperOrderRow,
    PaperPositionRow,
    insert_later,
    row_values,
    with_defaults,
)
from shared.models import OrderStatus

ACCOUNT_ID = 1
RESTING = (OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)


class Books(ABC):
    """The books as one transaction sees them. Rows are changed in place; new ones are added here."""

    @abstractmethod
    def account(self) -> PaperAccountRow: ...

    @abstractmethod
    def position(self, symbol: str) -> PaperPositionRow | None: ...

    @abstractmethod
    def add_position(self, row: PaperPositionRow) -> None: ...

    @abstractmethod
    def open_positions(self) -> list[PaperPositionRow]: ...

    @abstractmethod
    def margin_used(self, exclude: str | None = None) -> float:
        """The margin posted by every position (but ``exclude``'s); a transaction changes one market, so the
        others are read as they stand."""

    @abstractmethod
    def order(self, client_id: str) -> PaperOrderRow | None: ...

    @abstractmethod
    def resting(self, symbol: str | None = None) -> list[PaperOrderRow]:
        """Open or partially filled orders (of one market), oldest first (created_at, then exchange id)."""

    @abstractmethod
    def add_order(self, row: PaperOrderRow) -> None: ...

    @abstractmethod
    def fills(self, exchange_id: str) -> list[PaperFillRow]:
        """An order's fills by trade id."""

    @abstractmethod
    def add_fill(self, row: PaperFillRow) -> None: ...

    @abstractmethod
    def ledger(self, kind: str, symbol: str, amount: float, time: datetime, reference: str) -> None: ...

    @abstractmethod
    def ledger_total(self, kind: str | None = None) -> float: ...

    @abstractmethod
    def latest_time(self) -> datetime | None:
        """The latest market time anything was booked at (an order, a fill, a ledger entry); None: none."""


class PaperBooks(ABC):
    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Books]:
        """The books for one transaction: what it changed is kept if it ends normally, undone if it raises."""

    @contextmanager
    def reading(self) -> Iterator[Books]:
        """The books to read, not to change."""
        with self.transaction() as books:
            yield books


class _SessionBooks(Books):
    def __init__(self, session: Session) -> None:
        self._session = session

    def account(self) -> PaperAccountRow:
        row = self._session.get(PaperAccountRow, ACCOUNT_ID)
        assert row is not None
        return row

    def position(self, symbol: str) -> PaperPositionRow | None:
        return self._session.get(PaperPositionRow, symbol)

    def add_position(self, row: PaperPositionRow) -> None:
        self._session.add(row)
        self._session.flush()

    def open_positions(self) -> list[PaperPositionRow]:
        query = select(PaperPositionRow).where(PaperPositionRow.quantity != 0)
        return list(self._session.scalars(query))

    def margin_used(self, exclude: str | None = None) -> float:
        query = select(func.coalesce(func.sum(PaperPositionRow.margin), 0.0))
        if exclude is not None:
            query = query.where(PaperPositionRow.symbol != exclude)
        with self._session.no_autoflush:
            return float(self._session.scalar(query) or 0.0)

    def order(self, client_id: str) -> PaperOrderRow | None:
        return self._session.scalar(select(PaperOrderRow).where(PaperOrderRow.client_id == client_id))

    def resting(self, symbol: str | None = None) -> list[PaperOrderRow]:
        query = select(PaperOrderRow).where(PaperOrderRow.status.in_(RESTING))
        if symbol is not None:
            query = query.where(PaperOrderRow.symbol == symbol)
        return list(
            self._session.scalars(query.order_by(PaperOrderRow.created_at, PaperOrderRow.exchange_id))
        )

    def add_order(self, row: PaperOrderRow) -> None:
        self._session.add(row)  # inserted with its outcome when the transaction flushes, not before

    def fills(self, exchange_id: str) -> list[PaperFillRow]:
        query = (
            select(PaperFillRow)
            .where(PaperFillRow.exchange_id == exchange_id)
            .order_by(PaperFillRow.trade_id)
        )
        return list(self._session.scalars(query))

    def add_fill(self, row: PaperFillRow) -> None:
        self._session.add(row)

    def ledger(self, kind: str, symbol: str, amount: float, time: datetime, reference: str) -> None:
        values = {"kind": kind, "symbol": symbol, "amount": amount, "reference": reference}
        insert_later(self._session, PaperLedgerRow, {**values, "time": time})

    def ledger_total(self, kind: str | None = None) -> float:
        query = select(func.coalesce(func.sum(PaperLedgerRow.amount), 0.0))
        if kind is not None:
            query = query.where(PaperLedgerRow.kind == kind)
        return float(self._session.scalar(query) or 0.0)

    def latest_time(self) -> datetime | None:
        found = [
            self._session.scalar(select(func.max(column)))
            for column in (PaperOrderRow.created_at, PaperFillRow.time, PaperLedgerRow.time)
        ]
        times = [t for t in found if t is not None]
        return max(times) if times else None


class DatabaseBooks(PaperBooks):
    def __init__(self, db: Database, starting_balance: float) -> None:
        self._db = db
        with db.session() as session:
            if session.get(PaperAccountRow, ACCOUNT_ID) is None:
                session.add(PaperAccountRow(id=ACCOUNT_ID, balance=starting_balance, fees_paid=0.0))

    @contextmanager
    def transaction(self) -> Iterator[Books]:
        with self._db.session() as session:
            yield _SessionBooks(session)


class MemoryBooks(PaperBooks, Books):
    """The books in memory. A transaction notes the rows it adds and first copies the rows it may change (the
    account, the positions, the resting orders), so a failed one is undone like a rolled-back one."""

    def __init__(self, starting_balance: float) -> None:
        self._account = PaperAccountRow(id=ACCOUNT_ID, balance=starting_balance, fees_paid=0.0)
        self._positions: dict[str, PaperPositionRow] = {}
        self._orders: dict[str, PaperOrderRow] = {}  # by client id
        self._resting: dict[str, dict[str, PaperOrderRow]] = {}  # symbol -> client id -> possibly resting
        self._fills: dict[str, list[PaperFillRow]] = {}  # by exchange id
        self._ledger: dict[str, list[float]] = {}  # kind -> amounts, in entry order
        self._entries: list[float] = []  # every amount, in entry order
        self._added: list[Any] = []  # this transaction's new rows
        self._latest: datetime | None = None

    @contextmanager
    def transaction(self) -> Iterator[Books]:
        saved = [(row, row_values(row)) for row in (self._account, *self._positions.values(), *self._open())]
        ledger = {kind: len(amounts) for kind, amounts in self._ledger.items()}
        entries = len(self._entries)
        self._added = []
        try:
            yield self
        except BaseException:
            for row, values in saved:
                for key, value in values.items():
                    setattr(row, key, value)
            for kind in list(self._ledger):
                del self._ledger[kind][ledger.get(kind, 0) :]
            del self._entries[entries:]
            self._forget(self._added)
            raise
        finally:
            self._added = []

    @contextmanager
    def reading(self) -> Iterator[Books]:
        yield self

    def _forget(self, rows: list[Any]) -> None:
        for row in rows:
            if isinstance(row, PaperOrderRow):
                self._orders.pop(row.client_id, None)
                self._resting.get(row.symbol, {}).pop(row.client_id, None)
            elif isinstance(row, PaperFillRow):
                self._fills[row.exchange_id].remove(row)
            elif isinstance(row, PaperPositionRow):
                self._positions.pop(row.symbol, None)

    def _open(self) -> list[PaperOrderRow]:
        return [o for orders in self._resting.values() for o in orders.values() if o.status in RESTING]

    def account(self) -> PaperAccountRow:
        return self._account

    def position(self, symbol: str) -> PaperPositionRow | None:
        return self._positions.get(symbol)

    def add_position(self, row: PaperPositionRow) -> None:
        self._positions[row.symbol] = with_defaults(row)
        self._added.append(row)

    def open_positions(self) -> list[PaperPositionRow]:
        return [row for row in self._positions.values() if row.quantity != 0]

    def margin_used(self, exclude: str | None = None) -> float:
        # summed in the order the rows were made, as the database's SUM() scans them
        return sum((row.margin for symbol, row in self._positions.items() if symbol != exclude), 0.0)

    def order(self, client_id: str) -> PaperOrderRow | None:
        return self._orders.get(client_id)

    def resting(self, symbol: str | None = None) -> list[PaperOrderRow]:
        markets = [symbol] if symbol is not None else list(self._resting)
        found: list[PaperOrderRow] = []
        for market in markets:
            orders = self._resting.get(market, {})
            for client_id in [c for c, o in orders.items() if o.status not in RESTING]:
                del orders[client_id]  # finished since: no longer looked at
            found.extend(orders.values())
        return sorted(found, key=lambda o: (o.created_at, o.exchange_id))

    def _saw(self, time: datetime | None) -> None:
        if time is not None and (self._latest is None or time > self._latest):
            self._latest = time

    def latest_time(self) -> datetime | None:
        return self._latest

    def add_order(self, row: PaperOrderRow) -> None:
        self._saw(row.created_at)
        self._orders[row.client_id] = with_defaults(row)
        self._resting.setdefault(row.symbol, {})[row.client_id] = row
        self._added.append(row)

    def fills(self, exchange_id: str) -> list[PaperFillRow]:
        return sorted(self._fills.get(exchange_id, []), key=lambda f: f.trade_id)

    def add_fill(self, row: PaperFillRow) -> None:
        self._saw(row.time)
        self._fills.setdefault(row.exchange_id, []).append(row)
        self._added.append(row)

    def ledger(self, kind: str, symbol: str, amount: float, time: datetime, reference: str) -> None:
        self._saw(time)
        self._ledger.setdefault(kind, []).append(amount)
        self._entries.append(amount)

    def ledger_total(self, kind: str | None = None) -> float:
        if kind is not None:
            return sum(self._ledger.get(kind, []), 0.0)
        return sum(self._entries, 0.0)
