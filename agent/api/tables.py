"""The dashboard's tables a page at a time, filtered (read-only).

``GET /api/tables/trades?page=&per_page=&symbol=&side=BUY|SELL`` and
``GET /api/tables/signals?page=&per_page=&symbol=&action=buy|sell|close&outcome=pending|traded|no_trade``:
the rows newest first, in the shapes of ``/api/trades`` and ``/api/signals``, with ``total`` (rows matching
the filters), ``page``, ``per_page`` and ``pages``. A bad value is a 400 naming the field and the rule.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import InstrumentedAttribute

from shared.db import Database, DecisionRow, SignalRow, TradeRow
from shared.models import SignalAction
from shared.serialize import signal_dict, trade_dict
from shared.symbols import normalise_symbol

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
SIDES = ("BUY", "SELL")
# a signal's outcome, as signal_dict shows it: no decision yet, traded (risk approved), or no trade
OUTCOMES: dict[str, ColumnElement[bool]] = {
    "pending": DecisionRow.id.is_(None),
    "traded": DecisionRow.risk_approved.is_(True),
    "no_trade": and_(DecisionRow.id.is_not(None), DecisionRow.risk_approved.is_(False)),
}
Problem = dict[str, str]


def _positive(name: str, default: int, most: int | None, details: list[Problem]) -> int:
    raw = request.args.get(name, str(default))
    if not raw.isdigit() or int(raw) < 1 or (most is not None and int(raw) > most):
        rule = f"an integer from 1 to {most}" if most is not None else "an integer from 1"
        details.append({"field": name, "message": f"must be {rule}"})
        return default
    return int(raw)


def _choice(name: str, allowed: tuple[str, ...], details: list[Problem]) -> str | None:
    raw = request.args.get(name, "")
    if not raw:
        return None
    if raw not in allowed:
        details.append({"field": name, "message": f"must be one of {', '.join(allowed)}"})
    return raw


def _symbol(details: list[Problem]) -> str | None:
    raw = request.args.get("symbol", "")
    if not raw:
        return None
    try:
        return normalise_symbol(raw)
    except ValueError as exc:
        details.append({"field": "symbol", "message": str(exc)})
        return None


def _equal(filters: dict[InstrumentedAttribute[str], str | None]) -> list[ColumnElement[bool]]:
    """column == value for each filter given (None: not filtered)."""
    return [column == value for column, value in filters.items() if value is not None]


def _page_of(
    db: Database, query: Select[*tuple[Any, ...]], count: Select[int], page: int, per_page: int
) -> dict[str, Any]:
    with db.session() as session:
        total = int(session.scalar(count) or 0)
        rows = session.execute(query.limit(per_page).offset((page - 1) * per_page)).all()
        return {
            "rows": rows,
            "total": total,
            "page": page,
            "per_page": per_page,
            "pages": max(1, -(-total // per_page)),
        }


def _paging(details: list[Problem]) -> tuple[int, int]:
    return _positive("page", 1, None, details), _positive("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE, details)


def _invalid(details: list[Problem]) -> Any:
    return jsonify(error="invalid query", details=details), 400


def register_table_routes(app: Flask, db: Database) -> None:
    @app.get("/api/tables/trades")
    def trades_page() -> Any:
        details: list[Problem] = []
        page, per_page = _paging(details)
        symbol, side = _symbol(details), _choice("side", SIDES, details)
        if details:
            return _invalid(details)
        where = _equal({TradeRow.symbol: symbol, TradeRow.side: side})
        query = select(TradeRow).where(*where).order_by(TradeRow.id.desc())
        found = _page_of(db, query, select(func.count(TradeRow.id)).where(*where), page, per_page)
        return jsonify({**found, "rows": [trade_dict(row) for (row,) in found["rows"]]})

    @app.get("/api/tables/signals")
    def signals_page() -> Any:
        details: list[Problem] = []
        page, per_page = _paging(details)
        symbol = _symbol(details)
        action = _choice("action", tuple(a.value for a in SignalAction), details)
        outcome = _choice("outcome", tuple(OUTCOMES), details)
        if details:
            return _invalid(details)
        where = _equal({SignalRow.symbol: symbol, SignalRow.action: action})
        if outcome:
            where.append(OUTCOMES[outcome])
        joined = DecisionRow.signal_id == SignalRow.id
        query = (
            select(SignalRow, DecisionRow)
            .outerjoin(DecisionRow, joined)
            .where(*where)
            .order_by(SignalRow.id.desc())
        )
        count = select(func.count(SignalRow.id)).outerjoin(DecisionRow, joined).where(*where)
        found = _page_of(db, query, count, page, per_page)
        return jsonify({**found, "rows": [signal_dict(s, d) for s, d in found["rows"]]})
