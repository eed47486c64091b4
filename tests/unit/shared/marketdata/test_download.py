"""`bluefinai data download` (BLUEFIN_API=v2, the legacy gateway) against the fake v2 gateway: paging, resume, retries, no open candle."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from bluefinai.cli import main
from shared.marketdata.feeds import load_candle_csv
from shared.marketdata.files import read_candles
from tests.conftest import REAL_CANDLES
from tests.fakes.bluefin_gateway import FakeBluefinGateway


@pytest.fixture
def gateway() -> Iterator[FakeBluefinGateway]:
    fake = FakeBluefinGateway(cursor=2500)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def real() -> pd.DataFrame:
    return load_candle_csv(REAL_CANDLES)


def run(gateway: FakeBluefinGateway, *args: str) -> int:
    os.environ["BLUEFIN_NETWORK"] = gateway.url
    os.environ["BLUEFIN_API"] = "v2"
    try:
        return main(["data", "download", "--symbol", "BTC-PERP", *args])
    finally:
        del os.environ["BLUEFIN_NETWORK"], os.environ["BLUEFIN_API"]


def test_download_pages_resumes_and_never_keeps_the_open_candle(
    gateway: FakeBluefinGateway, real: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "btc.parquet"
    since = real["timestamp"].iloc[0].isoformat()
    until = real["timestamp"].iloc[1200].isoformat()
    assert run(gateway, "--since", since, "--until", until, "--out", str(out)) == 0
    first = read_candles(out)
    assert len(first) == 1200 and first["close"].tolist() == real["close"].iloc[:1200].tolist()
    pages = [q for p, q in gateway.requests if p == "/candlestickData"]
    assert len(pages) == 2  # 1000 + 200

    gateway.requests.clear()
    gateway.fail("/candlestickData", 429, times=1)  # retried, not fatal
    assert run(gateway, "--since", since, "--out", str(out)) == 0
    resumed = [q for p, q in gateway.requests if p == "/candlestickData"]
    assert int(resumed[0]["startTime"]) == int(real["timestamp"].iloc[1200].timestamp() * 1000)
    full = read_candles(out)
    assert len(full) == 2500  # rows 0..2499; 2500 is the open candle
    assert full["timestamp"].is_monotonic_increasing and not full["timestamp"].duplicated().any()
    pd.testing.assert_series_equal(
        full["close"], real["close"].iloc[:2500].reset_index(drop=True), check_names=False
    )
    assert "resumed after" in capsys.readouterr().out


def test_bad_dates_are_refused(gateway: FakeBluefinGateway, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run(gateway, "--since", "yesterday", "--out", str(tmp_path / "x.parquet"))
    assert (
        run(gateway, "--since", "2022-01-02", "--until", "2022-01-01", "--out", str(tmp_path / "x.parquet"))
        == 2
    )
