"""A trader's actions on positions and orders (the dashboard's buttons), through the engine's rules
(``agent.engine.position_actions``).

- ``POST /api/positions/<symbol>/close`` ``{"fraction": 0.5, "reason": "...", "request_id": "..."}``
  (fraction defaults to 1: the whole position);
- ``POST /api/positions/<symbol>/stop`` ``{"price": 61000, "reason": "..."}``;
- ``POST /api/orders/<client_id>/cancel``.

200 with what was done (the order, its status, the position and its stops now); 400 naming the field for
bad input; 409 ``{"error": "refused", "details": [{"field", "message", "rule"}]}`` when a rule refuses it;
404 for an unknown position or order. A refusal changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from agent.engine.engine import Engine
from agent.engine.position_actions import ActionRefused, NotFound, PositionActions, request_id_of
from shared.errors import InvalidInput
from shared.symbols import UnknownSymbol, normalise_symbol

ActionAnswer = tuple[Response, int]


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _refused(exc: ActionRefused, field: str) -> ActionAnswer:
    status = 404 if isinstance(exc, NotFound) else 409
    error = "not found" if status == 404 else "refused"
    return jsonify(error=error, details=[{"field": field, "message": str(exc), "rule": exc.rule}]), status


def _invalid(exc: InvalidInput) -> ActionAnswer:
    return jsonify(error="invalid request", details=exc.details()), 400


def register_action_routes(app: Flask, engine: Engine) -> None:
    actions = PositionActions(engine)

    def symbol_of(raw: str) -> str:
        symbol = normalise_symbol(raw)
        if symbol not in engine.feeds:
            raise UnknownSymbol(f"{raw} is not a traded market ({', '.join(engine.feeds)})")
        return symbol

    @app.post("/api/positions/<raw_symbol>/close")
    def close_position(raw_symbol: str) -> ActionAnswer:
        body = _body()
        try:
            symbol = symbol_of(raw_symbol)
            request_id = request_id_of(body.get("request_id"))
            result = actions.close(
                symbol, body.get("fraction", 1), str(body.get("reason") or "dashboard"), request_id
            )
        except InvalidInput as exc:
            return _invalid(exc)
        except ActionRefused as exc:
            return _refused(exc, "fraction")
        return jsonify(result.as_dict()), 200

    @app.post("/api/positions/<raw_symbol>/stop")
    def move_stop(raw_symbol: str) -> ActionAnswer:
        body = _body()
        try:
            result = actions.move_stop(
                symbol_of(raw_symbol), body.get("price"), str(body.get("reason") or "dashboard")
            )
        except InvalidInput as exc:
            return _invalid(exc)
        except ActionRefused as exc:
            return _refused(exc, "price")
        return jsonify(result.as_dict()), 200

    @app.post("/api/orders/<client_id>/cancel")
    def cancel_order(client_id: str) -> ActionAnswer:
        try:
            result = actions.cancel_order(client_id)
        except ActionRefused as exc:
            return _refused(exc, "order")
        return jsonify(result.as_dict()), 200
