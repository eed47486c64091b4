"""The error hierarchy (issue 16): every exception the project defines is a ``BluefinAIError`` that says
what to do, and field problems travel as data, never parsed back out of a message."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.bluefin_pro.signing import BadKey, SuiKey
from shared.errors import BluefinAIError, Conflict, FieldProblem, InvalidInput, Rejected
from shared.marketdata.files import CandleFileError, read_candles
from shared.marketdata.orderbook import BookError, OrderBook
from shared.symbols import UnknownSymbol, normalise_symbol

PACKAGES = ("shared", "agent", "bluefinai", "webhook", "dashboard")


def project_exceptions() -> list[type[BaseException]]:
    found = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if ".migrations" in module.name:
                continue
            loaded = importlib.import_module(module.name)
            for _, value in inspect.getmembers(loaded, inspect.isclass):
                if issubclass(value, BaseException) and value.__module__ == module.name:
                    found.append(value)
    return found


def test_every_project_exception_is_a_bluefinai_error() -> None:
    found = project_exceptions()
    names = {cls.__name__ for cls in found}
    assert {"Conflict", "UnknownSymbol", "BookError", "CandleFileError", "BadKey", "Fatal"} <= names
    outside = [f"{cls.__module__}.{cls.__name__}" for cls in found if not issubclass(cls, BluefinAIError)]
    assert outside == []


def test_problems_are_data_named_by_the_input() -> None:
    with pytest.raises(UnknownSymbol) as symbol:
        normalise_symbol("not a symbol!")
    assert symbol.value.details() == [
        {
            "field": "symbol",
            "message": "'not a symbol!' is not a perpetual symbol such as BTC-PERP or BTCUSDT.P",
        }
    ]
    with pytest.raises(BookError) as book:
        OrderBook("BTC-PERP", datetime(2022, 1, 1, tzinfo=UTC), bids=((100.0, 1.0),), asks=((99.0, 1.0),))
    assert book.value.problems[0].field == "book" and "crossed book" in book.value.problems[0].message
    with pytest.raises(BadKey) as key:
        SuiKey.parse("0x1234")
    assert key.value.problems[0].field == "BLUEFIN_PRIVATE_KEY"
    # several problems at once keep each field apart; the message only joins them for people
    several = InvalidInput(
        [FieldProblem("quantity", "must be positive"), FieldProblem("side", "buy or sell")]
    )
    assert [p.field for p in several.problems] == ["quantity", "side"]
    assert str(several) == "quantity: must be positive; side: buy or sell"


def test_a_bad_file_is_invalid_input_and_still_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "candles.xlsx"
    path.write_text("nothing")
    with pytest.raises(CandleFileError) as bad:
        read_candles(path)
    assert isinstance(bad.value, InvalidInput) and isinstance(bad.value, ValueError)
    assert bad.value.problems[0].field == "file" and str(bad.value).startswith(str(path))


def test_a_conflict_is_a_final_refusal() -> None:
    assert issubclass(Conflict, Rejected)
    from agent.journal.store import Conflict as StoreConflict  # the store raises the shared one

    assert StoreConflict is Conflict
