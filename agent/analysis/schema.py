"""The decision an AI analyst must return, as a pydantic model with bounds, and the checks that tie it to
the market (a stop on the wrong side, leverage above the market's maximum). An answer that fails any of
them is never traded."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import FieldProblem, InvalidInput
from shared.models import Decision, DecisionAction

ModelT = TypeVar("ModelT", bound=BaseModel)

FACTORS = ("trend", "momentum", "volatility", "volume", "levels", "order_book", "funding", "sentiment")


class DecisionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["open_long", "open_short", "close", "hold"]
    confidence: float = Field(ge=0, le=1)
    entry_type: Literal["market", "limit"] = "market"
    entry_price: float | None = Field(default=None, gt=0)
    stop_loss: float | None = Field(default=None, gt=0)
    take_profits: list[float] = Field(default_factory=list, max_length=5)
    leverage: float = Field(default=1, ge=1, le=100)
    time_horizon: Literal["scalp", "intraday", "swing", "position"] = "intraday"
    rationale: str = Field(min_length=1, max_length=2000)
    factors: dict[str, float] = Field(default_factory=dict)


def validated(model: type[ModelT], raw: Any) -> ModelT:
    """``raw`` as ``model``; InvalidInput naming every field that breaks its rule ("answer": the whole)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [
            FieldProblem(".".join(str(p) for p in e["loc"]) or "answer", str(e["msg"])) for e in exc.errors()
        ]
        raise InvalidInput(problems) from None


def tool_schema() -> dict[str, Any]:
    """The JSON schema given to the model as the ``trade_decision`` tool's input."""
    schema = DecisionModel.model_json_schema()
    schema["properties"]["factors"]["description"] = f"scores from -1 to 1 for: {', '.join(FACTORS)}"
    return schema


def parse_decision(raw: Any, analyst: str, price: float, max_leverage: float) -> Decision:
    """Validate an answer; raise InvalidInput naming every problem."""
    model = validated(DecisionModel, raw)
    problems = []
    long = model.action == "open_long"
    if model.action in ("open_long", "open_short"):
        reference = model.entry_price or price
        if model.stop_loss is not None and (
            model.stop_loss >= reference if long else model.stop_loss <= reference
        ):
            problems.append(FieldProblem("stop_loss", f"on the wrong side of the entry {reference:g}"))
        for target in model.take_profits:
            if target <= reference if long else target >= reference:
                problems.append(
                    FieldProblem("take_profits", f"{target:g} on the wrong side of the entry {reference:g}")
                )
        if model.entry_type == "limit" and model.entry_price is None:
            problems.append(FieldProblem("entry_price", "a limit entry needs a price"))
    if model.leverage > max_leverage:
        problems.append(
            FieldProblem("leverage", f"{model.leverage:g} above the market maximum {max_leverage:g}")
        )
    if problems:
        raise InvalidInput(problems)
    return Decision(
        DecisionAction(model.action), model.confidence, model.rationale, analyst,
        stop_loss=model.stop_loss, take_profit=model.take_profits[0] if model.take_profits else None,
        factors={k: float(v) for k, v in model.factors.items()}, entry_type=model.entry_type,
        entry_price=model.entry_price, take_profits=tuple(model.take_profits), leverage=model.leverage,
        time_horizon=model.time_horizon,
    )  # fmt: skip
