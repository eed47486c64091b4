"""``bluefinai markets refresh`` reads Bluefin Pro's market specs into DATA_DIR; ``show`` prints what is used;
the paper exchange then trades on the refreshed specs. A Bluefin that does not answer changes nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bluefinai.cli import main
from shared.exchange.markets import REFRESHED_FILE_NAME, load_market_specs
from tests.conftest import free_port
from tests.fakes.bluefin_pro import FakeBluefinPro


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    values = {"DATA_DIR": str(tmp_path)}
    os.environ.update(values)
    yield values
    for key in ("DATA_DIR", "BLUEFIN_NETWORK"):
        os.environ.pop(key, None)


def test_refresh_writes_what_bluefin_lists_and_show_prints_it(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBluefinPro(symbols=("BTC-PERP", "ETH-PERP"))
    fake.start()
    try:
        os.environ["BLUEFIN_NETWORK"] = fake.url
        assert main(["markets", "refresh"]) == 0
    finally:
        fake.stop()
    assert f"wrote 2 markets to {tmp_path / REFRESHED_FILE_NAME}" in capsys.readouterr().out
    specs = load_market_specs(tmp_path)
    assert set(specs.markets) == {"BTC-PERP", "ETH-PERP"} and specs.source.startswith(
        "Bluefin Pro /v1/exchange/info"
    )
    assert main(["markets", "show"]) == 0
    shown = capsys.readouterr().out
    assert (
        shown.startswith("source: Bluefin Pro /v1/exchange/info") and "BTC-PERP: tick 0.1 step 0.001" in shown
    )


def test_refresh_with_bluefin_unreachable_keeps_the_specs_in_use(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ["BLUEFIN_NETWORK"] = f"http://127.0.0.1:{free_port()}"
    assert main(["markets", "refresh"]) == 1
    assert "the specs in use are unchanged" in capsys.readouterr().err
    assert not (tmp_path / REFRESHED_FILE_NAME).exists()
    assert "DEFAULTS" in load_market_specs(tmp_path).source
