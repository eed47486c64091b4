from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.symbols import UnknownSymbol, normalise_symbol


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("BTC-PERP", "BTC-PERP"), ("btc-perp", "BTC-PERP"), ("BTCUSDT", "BTC-PERP"), ("BTCUSDT.P", "BTC-PERP"),
     ("BINANCE:BTCUSDT.P", "BTC-PERP"), ("BYBIT:ETHUSDT.P", "ETH-PERP"), ("SOLUSDC", "SOL-PERP"),
     ("BTC/USDT", "BTC-PERP"), (" SUIUSDT ", "SUI-PERP"), ("BTCPERP", "BTC-PERP")],
)  # fmt: skip
def test_table(raw: str, expected: str) -> None:
    assert normalise_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["", "USDT", "???", "BTC", "-PERP", "A" * 40 + "USDT"])
def test_unknown(raw: str) -> None:
    with pytest.raises(UnknownSymbol):
        normalise_symbol(raw)


@given(st.one_of(st.text(max_size=30), st.integers(), st.none()))
def test_never_raises_anything_else_and_output_is_a_bluefin_name(raw: object) -> None:
    try:
        result = normalise_symbol(raw)  # type: ignore[arg-type]
    except UnknownSymbol:
        return
    assert re.fullmatch(r"[A-Z0-9]+-PERP", result)
