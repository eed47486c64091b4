"""``PaperExchange``: a simulated Bluefin perpetuals exchange whose books live in the database.

This first version fills market orders at the current mark price, charges the taker fee on the notional,
checks initial margin at the requested leverage, honours reduce-only, and keeps balance and positions in
its own tables (``paper_*``), so its state survives a restart.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from shared.accounting import apply_fill
from shared.db import Database, PaperAccountRow, PaperOrderRow, PaperPositionRow
from shared.errors import Rejected, Temporary
from shared.exchange.base import Account, Exchange
from shared.models import Fill, OrderRequest, OrderResult, OrderStatus, OrderType, Position, Side

ACCOUNT_ID = 1


class PaperExchange(Exchange):
    name = "paper"

    def __init__(self, db: Database, starting_balance: float, taker_fee: float) -> None:
        self._db = db
        self._taker_fee = taker_fee
        self._marks: dict[str, float] = {}
        self._clock = datetime.now(UTC)
        self._lock = threading.Lock()
        with db.session() as session:
            if session.get(PaperAccountRow, ACCOUNT_ID) is None:
                session.add(PaperAccountRow(id=ACCOUNT_ID, balance=starting_balance, fees_paid=0.0))

    # market data pushed in by the engine
    def on_price(self, symbol: str, price: float, time: datetime) -> None:
        self._marks[symbol] = price
        self._clock = time

    def mark_price(self, symbol: str) -> float | None:
        return self._marks.get(symbol)

    def place_order(self, request: OrderRequest) -> OrderResult:
        if request.order_type is not OrderType.MARKET:
            raise Rejected(f"order type {request.order_type} is not supported by this paper exchange yet")
        if request.quantity <= 0:
            raise Rejected("quantity must be positive")
        price = self._marks.get(request.symbol)
        if price is None:
            raise Temporary(f"no market price for {request.symbol} yet")
        with self._lock, self._db.session() as session:
            if session.scalar(select(PaperOrderRow).where(PaperOrderRow.client_id == request.client_id)):
                raise Rejected(f"duplicate client id {request.client_id}")
            account = session.get(PaperAccountRow, ACCOUNT_ID)
            assert account is not None
            row = session.get(PaperPositionRow, request.symbol) or PaperPositionRow(
                symbol=request.symbol, quantity=0.0, entry_price=0.0
            )
            position = Position(request.symbol, row.quantity, row.entry_price)
            quantity = self._allowed_quantity(request, position)
            effect = apply_fill(position, request.side, quantity, price)
            fee = quantity * price * self._taker_fee
            self._check_margin(session, request, effect.position, price, account.balance)
            exchange_id = f"paper-{uuid.uuid4().hex[:16]}"
            row.quantity, row.entry_price = effect.position.quantity, effect.position.entry_price
            session.merge(row)
            account.balance += effect.realized_pnl - fee
            account.fees_paid += fee
            session.add(
                PaperOrderRow(
                    exchange_id=exchange_id,
                    client_id=request.client_id,
                    symbol=request.symbol,
                    side=request.side.value,
                    quantity=request.quantity,
                    filled_quantity=quantity,
                    average_price=price,
                    fee=fee,
                    status=OrderStatus.FILLED.value,
                    created_at=self._clock,
                )
            )
        return self._result(
            exchange_id, request.client_id, request.symbol, request.side, quantity, price, fee
        )

    def _allowed_quantity(self, request: OrderRequest, position: Position) -> float:
        if not request.reduce_only:
            return request.quantity
        reduces = position.quantity * request.side.sign < 0
        if not reduces:
            raise Rejected("reduce-only order would not reduce the position")
        return min(request.quantity, abs(position.quantity))

    def _check_margin(
        self, session: object, request: OrderRequest, after: Position, price: float, balance: float
    ) -> None:
        if request.reduce_only:
            return
        required = abs(after.quantity) * price / max(request.leverage, 1.0)
        equity = balance + self._unrealized(exclude=request.symbol)
        if required > equity:
            raise Rejected(f"insufficient margin: needs {required:.2f}, equity {equity:.2f}")

    def _result(
        self, exchange_id: str, client_id: str, symbol: str, side: Side, qty: float, price: float, fee: float
    ) -> OrderResult:
        fill = Fill(f"{exchange_id}-1", client_id, symbol, side, qty, price, fee, self._clock)
        return OrderResult(client_id, exchange_id, OrderStatus.FILLED, qty, price, (fill,))

    def get_order(self, client_id: str) -> OrderResult | None:
        with self._db.session() as session:
            row = session.scalar(select(PaperOrderRow).where(PaperOrderRow.client_id == client_id))
            if row is None:
                return None
            if row.filled_quantity <= 0 or row.average_price is None:
                return OrderResult(
                    client_id, row.exchange_id, OrderStatus(row.status), 0.0, None, (), row.reason
                )
            fill = Fill(
                f"{row.exchange_id}-1", client_id, row.symbol, Side(row.side), row.filled_quantity,
                row.average_price, row.fee, row.created_at,
            )  # fmt: skip
            return OrderResult(
                client_id,
                row.exchange_id,
                OrderStatus(row.status),
                row.filled_quantity,
                row.average_price,
                (fill,),
            )

    def positions(self) -> list[Position]:
        with self._db.session() as session:
            rows = session.scalars(select(PaperPositionRow).where(PaperPositionRow.quantity != 0)).all()
            return [Position(r.symbol, r.quantity, r.entry_price) for r in rows]

    def _unrealized(self, exclude: str | None = None) -> float:
        total = 0.0
        for position in self.positions():
            mark = self._marks.get(position.symbol)
            if mark is not None and position.symbol != exclude:
                total += position.unrealized_pnl(mark)
        return total

    def account(self) -> Account:
        with self._db.session() as session:
            account = session.get(PaperAccountRow, ACCOUNT_ID)
            assert account is not None
            balance, fees = account.balance, account.fees_paid
        unrealized = self._unrealized()
        return Account(balance, balance + unrealized, unrealized, fees)
