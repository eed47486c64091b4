"""The rest of the dashboard's tables a page at a time: ``/api/tables/orders``, ``decisions``, ``fills``,
``funding`` and ``positions`` (open ones), each with its filters, in the shape of ``agent.api.tables``
(``rows``, ``total``, ``page``, ``per_page``, ``pages``); a bad value is a 400 naming the field and the rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify
from sqlalchemy import ColumnElement, and_, func, select

from agent.api.tables import SIDES, Problem, _choice, _equal, _invalid, _page_of, _paging, _symbol
from agent.engine.control import IN_FLIGHT
from shared.db import Database, DecisionRow, FillRow, FundingRow, OrderRow, PositionRow
from shared.models import DecisionAction, OrderStatus
from shared.serialize import decision_dict, fill_dict, order_dict, position_dict

if TYPE_CHECKING:
    from agent.engine.engine import Engine

# an order's state as a trader asks for it: still working, or finished one way or another
ORDER_STATES: dict[str, ColumnElement[bool]] = {
    "working": OrderRow.status.in_(IN_FLIGHT),
    "finished": OrderRow.status.not_in(IN_FLIGHT),
    **{status.value: OrderRow.status == status.value for status in OrderStatus},
}
# a decision's verdict as the dashboard shows it
VERDICTS: dict[str, ColumnElement[bool]] = {
    "approved": DecisionRow.risk_approved.is_(True),
    "vetoed": and_(DecisionRow.risk_approved.is_(False), DecisionRow.action != DecisionAction.HOLD.value),
    "hold": and_(DecisionRow.risk_approved.is_(False), DecisionRow.action == DecisionAction.HOLD.value),
}
POSITION_SIDES: dict[str, ColumnElement[bool]] = {
    "long": PositionRow.quantity > 0,
    "short": PositionRow.quantity < 0,
}


def register_journal_table_routes(app: Flask, db: Database, engine: Engine) -> None:
    @app.get("/api/tables/orders")
    def orders_page() -> Any:
        details: list[Problem] = []
        page, per_page = _paging(details)
        symbol, side = _symbol(details), _choice("side", SIDES, details)
        state = _choice("state", tuple(ORDER_STATES), details)
        if details:
            return _invalid(details)
        where = _equal({OrderRow.symbol: symbol, OrderRow.side: side})
        if state:
            where.append(ORDER_STATES[state])
        query = select(OrderRow).where(*where).order_by(OrderRow.id.desc())
        found = _page_of(db, query, select(func.count(OrderRow.id)).where(*where), page, per_page)
        return jsonify({**found, "rows": [order_dict(row) for (row,) in found["rows"]]})

    @app.get("/api/tables/decisions")
    def decisions_page() -> Any:
        details: list[Problem] = []
        page, per_page = _paging(details)
        action = _choice("action", tuple(a.value for a in DecisionAction), details)
        verdict = _choice("verdict", tuple(VERDICTS), details)
        if details:
            return _invalid(details)
        where = _equal({DecisionRow.action: action})
        if verdict:
            where.append(VERDICTS[verdict])
        query = select(DecisionRow).where(*where).order_by(DecisionRow.id.desc())
        found = _page_of(db, query, select(func.count(DecisionRow.id)).where(*where), page, per_page)
        return jsonify({**found, "rows": [decision_dict(row) for (row,) in found["rows"]]})

    @app.get("/api/tables/fills")
    def fills_page() -> Any:
        details: list[Problem] = []
        page, per_page = _paging(details)
        symbol, side = _symbol(details), _choice("side", SIDES, details)
        if details:
            return _invalid(details)
        where = _equal({FillRow.symbol: symbol, FillRow.side: side})
        query = select(FillRow).where(*where).order_by(FillRow.time.desc(), FillRow.id.desc())
        found = _page_of(db, query, select(func.count(FillRow.id)).where(*where), page, per_page)
        return jsonify({**found, "rows": [fill_dict(row) for (row,) in found["rows"]]})

    @app.get("/api/tables/funding")
    def funding_page() -> Any:
        details: list[Problem] = []
        page, per_page = _paging(details)
        symbol = _symbol(details)
        if details:
            return _invalid(details)
        where = _equal({FundingRow.symbol: symbol})
        query = select(FundingRow).where(*where).order_by(FundingRow.time.desc(), FundingRow.id.desc())
        found = _page_of(db, query, select(func.count(FundingRow.id)).where(*where), page, per_page)
        with db.session() as session:
            total_amount = float(session.scalar(select(func.sum(FundingRow.amount)).where(*where)) or 0.0)
        rows = [
            {
                "symbol": r.symbol,
                "amount": r.amount,
                "rate": r.rate,
                "side": r.side,
                "time": r.time.isoformat(),
            }
            for (r,) in found["rows"]
        ]
        return jsonify({**found, "rows": rows, "amount": total_amount})

    @app.get("/api/tables/positions")
    def positions_page() -> Any:
        details: list[Problem] = []
        page, per_page = _paging(details)
        symbol = _symbol(details)
        side = _choice("side", tuple(POSITION_SIDES), details)
        if details:
            return _invalid(details)
        where = [PositionRow.quantity != 0, *_equal({PositionRow.symbol: symbol})]
        if side:
            where.append(POSITION_SIDES[side])
        query = select(PositionRow).where(*where).order_by(PositionRow.symbol)
        found = _page_of(db, query, select(func.count(PositionRow.symbol)).where(*where), page, per_page)
        rows = [position_dict(row, engine.exchange.mark_price(row.symbol)) for (row,) in found["rows"]]
        return jsonify({**found, "rows": rows})
