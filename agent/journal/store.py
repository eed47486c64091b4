"""Where the engine keeps its records: signals, decisions, orders, fills, positions, trades, position plans,
algos, journal events and its persisted state.

``DatabaseStore`` (live and paper trading): the tables of ``shared.db``, one database transaction per
``transaction()``, so every money-safety rule of DESIGN.md holds across restarts and processes (the order row
is committed before the exchange is called, and so on). ``MemoryStore`` (a backtest, which has nothing to
recover and no other process reading along): the same rows as plain objects in dictionaries, written to the
database once, when the run ends (``persist``), instead of a database round trip per read and write. The
engine's logic is the same over both.

A unique key already taken (a signal stored twice, a signal decided twice, a plan already there, an order's
client id or a fill's trade id seen before) raises ``Conflict``: the database rolls the transaction back,
memory checks before it changes anything. A memory transaction is not undone on other errors: a backtest
stops at the first one (its records are then only a diagnosis). In memory, ``created_at``/``updated_at``
are when a row was made (wall-clock, as in the database), and ``updated_at`` does not move on a change.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import chain
from operator import attrgetter
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.db import (
    AlgoRow,
    Base,
    Database,
    DecisionRow,
    EventRow,
    FillRow,
    FundingRow,
    OrderRow,
    PositionPlanRow,
    PositionRow,
    SignalRow,
    StateRow,
    TradeRow,
    get_state,
    insert_later,
    row_values,
    set_state,
    utcnow,
    with_defaults,
)
from shared.errors import Conflict as Conflict  # the store raises it; callers may import it from here
from shared.models import OrderStatus, Position

# an entry order with its decision and signal (each may be missing)
EntryRows = tuple[OrderRow | None, DecisionRow | None, SignalRow | None]
# statuses an order never leaves (agent.execution.lifecycle): memory stops looking at such orders for the
# queries of working ones
TERMINAL = frozenset((OrderStatus.FILLED.value, OrderStatus.CANCELED.value, OrderStatus.REJECTED.value))
BY_ID, BY_SYMBOL = attrgetter("id"), attrgetter("symbol")


class Records(ABC):
    """The records as one transaction sees them. Rows read are changed in place; new ones are added here."""

    # signals ------------------------------------------------------------------------------------------------
    @abstractmethod
    def add_signal(self, row: SignalRow) -> None:
        """Conflict if its idempotency key is stored already."""

    @abstractmethod
    def signal(self, signal_id: int) -> SignalRow | None: ...

    @abstractmethod
    def pending_signals(self, limit: int) -> list[SignalRow]:
        """Signals without a decision, oldest first."""

    @abstractmethod
    def decided(self, signal_id: int) -> bool: ...

    @abstractmethod
    def add_decision(self, row: DecisionRow) -> None:
        """Conflict if its signal has a decision; the row has its id afterwards."""

    # orders -------------------------------------------------------------------------------------------------
    @abstractmethod
    def add_order(self, row: OrderRow) -> None: ...

    @abstractmethod
    def committed(self, row: OrderRow) -> OrderRow:
        """The stored order of ``row``, a copy of it as committed earlier and unchanged since."""

    @abstractmethod
    def order(self, client_id: str) -> OrderRow | None: ...

    @abstractmethod
    def orders(
        self,
        statuses: Iterable[str],
        symbol: str | None = None,
        roles: Iterable[str] | None = None,
        parent: str | None = None,
    ) -> list[OrderRow]:
        """Orders in one of ``statuses`` (of that market, of those roles, children of that parent), by id."""

    @abstractmethod
    def children(self, parent: str) -> list[OrderRow]:
        """Every order of a parent (an entry's protective orders, an algo's slices), by id."""

    @abstractmethod
    def client_ids(self) -> set[str]: ...

    @abstractmethod
    def latest_entry(self, symbol: str, side: str) -> EntryRows:
        """The latest order of that side in that market that filled and is not reduce-only, with its decision
        and signal."""

    # fills, positions, trades, plans ------------------------------------------------------------------------
    @abstractmethod
    def fill_booked(self, trade_id: str) -> bool: ...

    @abstractmethod
    def fills(self, client_id: str) -> list[FillRow]: ...

    @abstractmethod
    def add_fill(self, row: FillRow) -> None: ...

    @abstractmethod
    def position(self, symbol: str) -> PositionRow | None: ...

    @abstractmethod
    def add_position(self, row: PositionRow) -> None: ...

    @abstractmethod
    def positions(self, also: str | None = None) -> list[PositionRow]:
        """The open positions, and the row of ``also`` even when it is flat, by symbol."""

    def position_values(self, also: str | None = None) -> list[Position]:
        """``positions`` as values, to read and not to change (what a decision reads of our books)."""
        return [Position(r.symbol, r.quantity, r.entry_price, r.realized_pnl) for r in self.positions(also)]

    def order_kinds(self, statuses: Iterable[str], symbol: str) -> list[tuple[str, str, str]]:
        """(client id, status, order type) of ``orders(statuses, symbol)``, by id, to read only."""
        return [(o.client_id, o.status, o.order_type) for o in self.orders(statuses, symbol)]

    @abstractmethod
    def add_trade(self, row: TradeRow) -> None: ...

    @abstractmethod
    def trade_pnls(self) -> list[tuple[str, float]]:
        """(signal source, pnl) of every closed trade, oldest first."""

    @abstractmethod
    def trade_at(self, symbol: str, time: datetime) -> TradeRow | None:
        """The latest closed trade of the market that was open at ``time`` (opened before it, closed at or
        after it)."""

    @abstractmethod
    def plan(self, symbol: str) -> PositionPlanRow | None: ...

    @abstractmethod
    def add_plan(self, row: PositionPlanRow) -> None:
        """Conflict if the market has a plan."""

    @abstractmethod
    def update_plan(self, symbol: str, values: dict[str, Any]) -> bool:
        """False if the market has no plan."""

    @abstractmethod
    def delete_plan(self, symbol: str) -> None: ...

    # algos, events, state -----------------------------------------------------------------------------------
    @abstractmethod
    def add_algo(self, row: AlgoRow) -> None: ...

    @abstractmethod
    def algo(self, client_id: str) -> AlgoRow | None: ...

    @abstractmethod
    def running_algos(self) -> list[str]: ...

    @abstractmethod
    def latest_funding(self) -> datetime | None:
        """When the latest funding payment booked was settled."""

    @abstractmethod
    def add_funding(self, row: FundingRow) -> bool:
        """Book a funding payment; False, and nothing changed, when its key is booked already."""

    @abstractmethod
    def event(self, name: str, payload: dict[str, Any]) -> None:
        """Journal an event with this transaction (in recorded order)."""

    @abstractmethod
    def flush(self) -> None:
        """Give new rows their ids and defaults now (an event about them needs them)."""

    @abstractmethod
    def state(self, key: str, default: Any = None) -> Any: ...

    @abstractmethod
    def set_state(self, key: str, value: Any) -> None: ...


class Store(ABC):
    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Records]:
        """The records for one transaction: kept if it ends normally (see the module docstring)."""

    @abstractmethod
    def persist(self) -> None:
        """Write what only lives in memory to the database."""


# the books' reads, built once (building a query costs more than running it), values bound per call: the open
# positions and the row of ``also`` even when flat (``""``: none), as rows or as values (Core: no ORM objects
# to build, track and expire, what a decision reads); the orders of each shape ``orders`` is asked for
OPEN_OR_ALSO = (PositionRow.quantity != 0) | (PositionRow.symbol == bindparam("also"))
OPEN_POSITIONS = select(PositionRow).where(OPEN_OR_ALSO).order_by(PositionRow.symbol)
POSITION_VALUES = (
    select(PositionRow.symbol, PositionRow.quantity, PositionRow.entry_price, PositionRow.realized_pnl)
    .where(OPEN_OR_ALSO)
    .order_by(PositionRow.symbol)
)
INSERT_DECISION = insert(DecisionRow).returning(DecisionRow.id)  # run on the connection: Core, not the ORM


@functools.lru_cache(maxsize=64)
def _orders_query(
    statuses: tuple[str, ...], by_symbol: bool, roles: tuple[str, ...] | None, by_parent: bool
) -> Select[OrderRow]:
    query = select(OrderRow).where(OrderRow.status.in_(statuses))
    if by_symbol:
        query = query.where(OrderRow.symbol == bindparam("symbol"))
    if roles is not None:
        query = query.where(OrderRow.role.in_(roles))
    if by_parent:
        query = query.where(OrderRow.parent_client_id == bindparam("parent"))
    return query.order_by(OrderRow.id)


@functools.lru_cache(maxsize=16)
def _order_kinds_query(statuses: tuple[str, ...]) -> Select[str, str, str]:
    """``orders(statuses, symbol)`` as (client id, status, order type) values."""
    query = _orders_query(statuses, True, None, False)
    return query.with_only_columns(OrderRow.client_id, OrderRow.status, OrderRow.order_type)


class _SessionRecords(Records):
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_signal(self, row: SignalRow) -> None:
        self._session.add(row)

    def signal(self, signal_id: int) -> SignalRow | None:
        return self._session.get(SignalRow, signal_id)

    def pending_signals(self, limit: int) -> list[SignalRow]:
        query = (
            select(SignalRow)
            .outerjoin(DecisionRow, DecisionRow.signal_id == SignalRow.id)
            .where(DecisionRow.id.is_(None))
            .order_by(SignalRow.id)
            .limit(limit)
        )
        return list(self._session.scalars(query))

    def decided(self, signal_id: int) -> bool:
        query = select(DecisionRow.id).where(DecisionRow.signal_id == signal_id)
        return self._session.scalar(query) is not None

    def add_decision(self, row: DecisionRow) -> None:
        """A Core insert of the row's values (its defaults filled in), its id set on it: nothing in the
        transaction changes a decision afterwards, and the ORM's unit of work for one row was a third of a
        decision's cost. The row stays a plain object, outside the session."""
        values = row_values(with_defaults(row))
        del values["id"]
        row.id = self._session.connection().execute(INSERT_DECISION, values).scalar_one()

    def add_order(self, row: OrderRow) -> None:
        self._session.add(row)

    def committed(self, row: OrderRow) -> OrderRow:
        return self._session.merge(row, load=False)

    def order(self, client_id: str) -> OrderRow | None:
        return self._session.scalar(select(OrderRow).where(OrderRow.client_id == client_id))

    def orders(
        self,
        statuses: Iterable[str],
        symbol: str | None = None,
        roles: Iterable[str] | None = None,
        parent: str | None = None,
    ) -> list[OrderRow]:
        kinds = None if roles is None else tuple(roles)
        query = _orders_query(tuple(statuses), symbol is not None, kinds, parent is not None)
        values = {k: v for k, v in (("symbol", symbol), ("parent", parent)) if v is not None}
        return list(self._session.scalars(query, values))

    def children(self, parent: str) -> list[OrderRow]:
        query = select(OrderRow).where(OrderRow.parent_client_id == parent).order_by(OrderRow.id)
        return list(self._session.scalars(query))

    def client_ids(self) -> set[str]:
        return set(self._session.scalars(select(OrderRow.client_id)))

    def latest_entry(self, symbol: str, side: str) -> EntryRows:
        found = self._session.execute(
            select(OrderRow, DecisionRow, SignalRow)
            .outerjoin(DecisionRow, DecisionRow.id == OrderRow.decision_id)
            .outerjoin(SignalRow, SignalRow.id == OrderRow.signal_id)
            .where(OrderRow.symbol == symbol, OrderRow.side == side, OrderRow.filled_quantity > 0,
                   OrderRow.reduce_only.is_(False))
            .order_by(OrderRow.id.desc())
            .limit(1)
        ).first()  # fmt: skip
        return (found[0], found[1], found[2]) if found is not None else (None, None, None)

    def fill_booked(self, trade_id: str) -> bool:
        return self._session.scalar(select(FillRow.id).where(FillRow.trade_id == trade_id)) is not None

    def fills(self, client_id: str) -> list[FillRow]:
        query = select(FillRow).where(FillRow.client_id == client_id).order_by(FillRow.id)
        return list(self._session.scalars(query))

    def add_fill(self, row: FillRow) -> None:
        self._session.add(row)

    def position(self, symbol: str) -> PositionRow | None:
        return self._session.get(PositionRow, symbol)

    def add_position(self, row: PositionRow) -> None:
        self._session.add(row)

    def positions(self, also: str | None = None) -> list[PositionRow]:
        return list(self._session.scalars(OPEN_POSITIONS, {"also": also or ""}))

    def position_values(self, also: str | None = None) -> list[Position]:
        rows = self._session.connection().execute(POSITION_VALUES, {"also": also or ""})
        return [Position(*row) for row in rows]

    def order_kinds(self, statuses: Iterable[str], symbol: str) -> list[tuple[str, str, str]]:
        rows = self._session.connection().execute(_order_kinds_query(tuple(statuses)), {"symbol": symbol})
        return [(client_id, status, kind) for client_id, status, kind in rows]

    def add_trade(self, row: TradeRow) -> None:
        self._session.add(row)

    def trade_pnls(self) -> list[tuple[str, float]]:
        query = select(TradeRow.signal_source, TradeRow.pnl).order_by(TradeRow.id)
        return [(source, pnl) for source, pnl in self._session.execute(query)]

    def trade_at(self, symbol: str, time: datetime) -> TradeRow | None:
        query = (
            select(TradeRow)
            .where(TradeRow.symbol == symbol, TradeRow.opened_at < time, TradeRow.closed_at >= time)
            .order_by(TradeRow.id.desc())
            .limit(1)
        )
        return self._session.scalar(query)

    def plan(self, symbol: str) -> PositionPlanRow | None:
        return self._session.get(PositionPlanRow, symbol)

    def add_plan(self, row: PositionPlanRow) -> None:
        self._session.add(row)

    def update_plan(self, symbol: str, values: dict[str, Any]) -> bool:
        updated = self._session.execute(
            update(PositionPlanRow).where(PositionPlanRow.symbol == symbol).values(**values)
        )
        return bool(updated.rowcount)  # type: ignore[attr-defined]

    def delete_plan(self, symbol: str) -> None:
        row = self._session.get(PositionPlanRow, symbol)
        if row is not None:
            self._session.delete(row)

    def add_algo(self, row: AlgoRow) -> None:
        self._session.add(row)

    def algo(self, client_id: str) -> AlgoRow | None:
        return self._session.scalar(select(AlgoRow).where(AlgoRow.client_id == client_id))

    def running_algos(self) -> list[str]:
        query = select(AlgoRow.client_id).where(AlgoRow.status == "RUNNING").order_by(AlgoRow.id)
        return list(self._session.scalars(query))

    def latest_funding(self) -> datetime | None:
        return self._session.scalar(select(func.max(FundingRow.time)))

    def add_funding(self, row: FundingRow) -> bool:
        if self._session.scalar(select(FundingRow.id).where(FundingRow.key == row.key)) is not None:
            return False
        self._session.add(row)
        return True

    def event(self, name: str, payload: dict[str, Any]) -> None:
        insert_later(self._session, EventRow, {"type": name, "payload": payload})

    def flush(self) -> None:
        self._session.flush()

    def state(self, key: str, default: Any = None) -> Any:
        return get_state(self._session, key, default)

    def set_state(self, key: str, value: Any) -> None:
        set_state(self._session, key, value)


class DatabaseStore(Store):
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def transaction(self) -> Iterator[Records]:
        try:
            with self._db.session() as session:
                yield _SessionRecords(session)
        except IntegrityError as exc:  # rolled back; a unique key or another constraint
            raise Conflict(str(exc.orig)) from exc

    def persist(self) -> None:
        pass  # every transaction was written as it committed


# the engine's tables, in an order that inserts what a foreign key points at first
TABLES: tuple[type[Base], ...] = (
    SignalRow, DecisionRow, OrderRow, FillRow, PositionRow, TradeRow, PositionPlanRow, AlgoRow, EventRow,
    StateRow, FundingRow,
)  # fmt: skip


class MemoryStore(Store, Records):
    """The records in memory, ids given as the database would give them, for a database that has none yet.
    For one thread (a backtest's loop): nothing else reads or writes them while it runs."""

    def __init__(self, db: Database) -> None:
        self._db = db
        with db.session() as session:
            held = [t.__tablename__ for t in TABLES if session.scalar(select(func.count()).select_from(t))]
        if held:
            raise ValueError(f"records in memory need a database without any; it has {', '.join(held)}")
        self._ids: dict[type[Base], int] = {}
        self._signals: dict[int, SignalRow] = {}
        self._keys: set[str] = set()
        self._undecided: dict[int, SignalRow] = {}  # stored signals without a decision, by id
        self._decisions: dict[int, DecisionRow] = {}  # by id
        self._orders: dict[str, OrderRow] = {}  # by client id, in id order
        self._live: dict[str, OrderRow] = {}  # orders not known to be in a terminal status, in id order
        self._by_symbol: dict[str, list[OrderRow]] = {}
        self._children: dict[str, list[OrderRow]] = {}
        self._fills: dict[str, list[FillRow]] = {}  # by client id
        self._trade_ids: set[str] = set()
        self._positions: dict[str, PositionRow] = {}
        self._trades: list[TradeRow] = []
        self._plans: dict[str, PositionPlanRow] = {}
        self._algos: dict[str, AlgoRow] = {}
        self._events: list[dict[str, Any]] = []
        self._state: dict[str, Any] = {}
        self._funding: dict[str, FundingRow] = {}  # by key

    @contextmanager
    def transaction(self) -> Iterator[Records]:
        yield self

    def _new(self, row: Any) -> Any:
        """A new row as the database would store it: the next id, defaults for the columns left unset."""
        with_defaults(row)
        if "id" in row.__table__.columns and row.id is None:
            row.id = self._ids[type(row)] = self._ids.get(type(row), 0) + 1
        return row

    def add_signal(self, row: SignalRow) -> None:
        if row.idempotency_key in self._keys:
            raise Conflict(f"signal {row.idempotency_key} is stored already")
        self._new(row)
        self._keys.add(row.idempotency_key)
        self._signals[row.id] = self._undecided[row.id] = row

    def signal(self, signal_id: int) -> SignalRow | None:
        return self._signals.get(signal_id)

    def pending_signals(self, limit: int) -> list[SignalRow]:
        return list(self._undecided.values())[:limit]

    def decided(self, signal_id: int) -> bool:
        return signal_id in self._signals and signal_id not in self._undecided

    def add_decision(self, row: DecisionRow) -> None:
        if row.signal_id not in self._undecided:  # decided already (or unknown: the foreign key)
            raise Conflict(f"signal {row.signal_id} is decided already or not stored")
        self._new(row)
        self._decisions[row.id] = row
        del self._undecided[row.signal_id]

    def add_order(self, row: OrderRow) -> None:
        if row.client_id in self._orders:
            raise Conflict(f"order {row.client_id} is stored already")
        self._new(row)
        self._orders[row.client_id] = self._live[row.client_id] = row
        self._by_symbol.setdefault(row.symbol, []).append(row)
        if row.parent_client_id is not None:
            self._children.setdefault(row.parent_client_id, []).append(row)

    def committed(self, row: OrderRow) -> OrderRow:
        return self._orders[row.client_id]

    def order(self, client_id: str) -> OrderRow | None:
        return self._orders.get(client_id)

    def orders(
        self,
        statuses: Iterable[str],
        symbol: str | None = None,
        roles: Iterable[str] | None = None,
        parent: str | None = None,
    ) -> list[OrderRow]:
        wanted, kinds = frozenset(statuses), frozenset(roles) if roles is not None else None
        if wanted & TERMINAL:
            pool: Iterable[OrderRow] = (
                self._children.get(parent, []) if parent is not None else self._orders.values()
            )
        else:  # working orders only: those not known to be finished
            for client_id in [c for c, o in self._live.items() if o.status in TERMINAL]:
                del self._live[client_id]  # it never leaves that status: not looked at again
            pool = self._live.values()
        return [
            o for o in pool
            if o.status in wanted and (symbol is None or o.symbol == symbol)
            and (kinds is None or o.role in kinds) and (parent is None or o.parent_client_id == parent)
        ]  # fmt: skip

    def children(self, parent: str) -> list[OrderRow]:
        return list(self._children.get(parent, []))

    def client_ids(self) -> set[str]:
        return set(self._orders)

    def latest_entry(self, symbol: str, side: str) -> EntryRows:
        for order in reversed(self._by_symbol.get(symbol, [])):
            if order.side == side and order.filled_quantity > 0 and not order.reduce_only:
                decision = self._decisions.get(order.decision_id) if order.decision_id is not None else None
                signal = self._signals.get(order.signal_id) if order.signal_id is not None else None
                return order, decision, signal
        return None, None, None

    def fill_booked(self, trade_id: str) -> bool:
        return trade_id in self._trade_ids

    def fills(self, client_id: str) -> list[FillRow]:
        return list(self._fills.get(client_id, []))

    def add_fill(self, row: FillRow) -> None:
        if row.trade_id in self._trade_ids:
            raise Conflict(f"fill {row.trade_id} is booked already")
        self._new(row)
        self._trade_ids.add(row.trade_id)
        self._fills.setdefault(row.client_id, []).append(row)

    def position(self, symbol: str) -> PositionRow | None:
        return self._positions.get(symbol)

    def add_position(self, row: PositionRow) -> None:
        self._positions[row.symbol] = self._new(row)

    def positions(self, also: str | None = None) -> list[PositionRow]:
        rows = [row for row in self._positions.values() if row.quantity != 0 or row.symbol == also]
        return sorted(rows, key=BY_SYMBOL)

    def add_trade(self, row: TradeRow) -> None:
        self._trades.append(self._new(row))

    def trade_pnls(self) -> list[tuple[str, float]]:
        return [(trade.signal_source, trade.pnl) for trade in self._trades]

    def trade_at(self, symbol: str, time: datetime) -> TradeRow | None:
        for trade in reversed(self._trades):  # in the order they closed
            if trade.closed_at < time:
                return None  # this one and every earlier one closed before
            if trade.symbol == symbol and trade.opened_at < time:
                return trade
        return None

    def plan(self, symbol: str) -> PositionPlanRow | None:
        return self._plans.get(symbol)

    def add_plan(self, row: PositionPlanRow) -> None:
        if row.symbol in self._plans:
            raise Conflict(f"{row.symbol} has a position plan already")
        self._plans[row.symbol] = self._new(row)

    def update_plan(self, symbol: str, values: dict[str, Any]) -> bool:
        row = self._plans.get(symbol)
        if row is None:
            return False
        for key, value in values.items():
            setattr(row, key, value)
        return True

    def delete_plan(self, symbol: str) -> None:
        self._plans.pop(symbol, None)

    def add_algo(self, row: AlgoRow) -> None:
        self._algos[row.client_id] = self._new(row)

    def algo(self, client_id: str) -> AlgoRow | None:
        return self._algos.get(client_id)

    def running_algos(self) -> list[str]:
        return [client_id for client_id, algo in self._algos.items() if algo.status == "RUNNING"]

    def latest_funding(self) -> datetime | None:
        return max((r.time for r in self._funding.values()), default=None)

    def add_funding(self, row: FundingRow) -> bool:
        if row.key in self._funding:
            return False
        self._funding[row.key] = self._new(row)
        return True

    def event(self, name: str, payload: dict[str, Any]) -> None:
        self._events.append({"type": name, "payload": payload, "created_at": utcnow()})

    def flush(self) -> None:
        pass  # new rows have their ids and defaults as they are added

    def state(self, key: str, default: Any = None) -> Any:
        return self._state.get(key, default)

    def set_state(self, key: str, value: Any) -> None:
        self._state[key] = value

    def persist(self) -> None:
        """Replace the engine's tables with the records (it is their only writer while it runs)."""
        rows: dict[type[Base], list[dict[str, Any]]] = {
            SignalRow: [row_values(r) for r in self._signals.values()],
            DecisionRow: [row_values(r) for r in self._decisions.values()],
            OrderRow: [row_values(r) for r in self._orders.values()],
            FillRow: [row_values(r) for r in sorted(chain.from_iterable(self._fills.values()), key=BY_ID)],
            PositionRow: [row_values(r) for r in self._positions.values()],
            TradeRow: [row_values(r) for r in self._trades],
            PositionPlanRow: [row_values(r) for r in self._plans.values()],
            AlgoRow: [row_values(r) for r in self._algos.values()],
            EventRow: list(self._events),
            FundingRow: [row_values(r) for r in self._funding.values()],
        }
        with self._db.session() as session:
            for table in reversed(TABLES):
                session.execute(delete(table))
            for table in TABLES:
                if table is StateRow:
                    for key, value in self._state.items():
                        set_state(session, key, value)
                elif rows[table]:
                    session.execute(insert(table), rows[table])
            if not self._db.is_sqlite:  # explicit ids leave PostgreSQL's sequences behind: catch them up
                for table in TABLES:
                    if "id" in table.__table__.columns and table in self._ids:
                        name = table.__tablename__
                        session.execute(
                            text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), {self._ids[table]})")
                        )
