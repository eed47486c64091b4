"""BluefinProFeed on the fake Bluefin Pro (real candles from ../shared/data): history, polling, gaps
backfilled, the stream's candle close as the trigger, reconnect and resubscribe, stale, derivatives; and
``bluefinai data download`` paging Pro's candles (last and mark) and funding history, resuming."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from bluefinai.cli import main
from shared.bluefin_pro.network import pro_hosts
from shared.bluefin_pro.rest import ProClient
from shared.marketdata.bluefin_pro import BluefinProFeed, BluefinProMarketData
from shared.marketdata.feeds import load_candle_csv
from shared.marketdata.files import read_candles
from tests.conftest import REAL_CANDLES, wait_for
from tests.fakes.bluefin_pro import FakeBluefinPro


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return load_candle_csv(REAL_CANDLES)


def on_tick(values: pd.Series) -> list[float]:
    """The fake quotes the file's prices on BTC-PERP's tick (0.1), as Bluefin would."""
    return pytest.approx(values.tolist(), abs=0.05 + 1e-9)  # type: ignore[no-any-return]


@pytest.fixture
def fake() -> Iterator[FakeBluefinPro]:
    server = FakeBluefinPro(symbols=("BTC-PERP",), cursor=300)
    server.start()
    yield server
    server.stop()


def hub_of(fake: FakeBluefinPro, stream: bool = True) -> BluefinProMarketData:
    client = ProClient(pro_hosts(fake.url), timeout_s=3, sleep=lambda s: time.sleep(min(s, 0.2)))
    hub = BluefinProMarketData(client, ("BTC-PERP",), stream=stream)
    hub.start()
    return hub


def test_history_and_polls_are_the_files_closed_candles_with_gaps_backfilled(
    fake: FakeBluefinPro, real: pd.DataFrame
) -> None:
    hub = hub_of(fake, stream=False)
    try:
        feed = BluefinProFeed(hub, "BTC-PERP", poll_interval_s=0.0)
        history = feed.history(300)
        assert [c.close for c in history] == on_tick(real["close"].iloc[:300])  # row 300 is still open
        assert feed.poll() == []
        fake.advance(1)
        time.sleep(0.25)  # polls are at least 0.2 s apart
        (one,) = feed.poll()
        assert one.open_time == real["timestamp"].iloc[300].to_pydatetime()
        assert one.close == pytest.approx(real["close"].iloc[300], abs=0.05)
        fake.advance(1500)  # a gap: more than one page of candles
        time.sleep(0.25)
        caught_up = feed.poll()
        assert [c.close for c in caught_up] == on_tick(real["close"].iloc[301:1801])
        assert feed.backfilled == 1500 and not feed.stale
    finally:
        hub.stop()


def test_a_close_on_the_stream_triggers_the_fetch_and_the_stream_comes_back(fake: FakeBluefinPro) -> None:
    hub = hub_of(fake)
    try:
        wait_for(lambda: hub.stream_connected, 5)
        feed = BluefinProFeed(hub, "BTC-PERP", quiet_poll_s=3600.0)  # no slow poll: only the stream's close
        feed.history(10)
        fake.advance(1)
        time.sleep(0.3)
        fake.advance(1)
        candles = wait_for(lambda: feed.poll(), 5)
        assert len(candles) >= 1
        fake.drop_streams()
        wait_for(lambda: hub._stream is not None and hub._stream.connects >= 2, 10)
        time.sleep(0.3)
        fake.advance(1)
        time.sleep(0.3)
        fake.advance(1)
        assert wait_for(lambda: feed.poll(), 5)  # closes arrive again after the reconnect
        assert any(stream == "market" and event == "MarkPriceUpdate" for stream, event in fake.stream_events)
        assert hub.live("book", "BTC-PERP") and hub.live("ticker", "BTC-PERP")
        book, funding = feed.derivatives()
        assert book is not None and book["spread_bps"] >= 0 and funding is not None
    finally:
        hub.stop()


def test_the_feed_goes_stale_when_nothing_answers_and_backs_off(fake: FakeBluefinPro) -> None:
    hub = hub_of(fake, stream=False)
    try:
        feed = BluefinProFeed(hub, "BTC-PERP", poll_interval_s=0.0, stale_after_s=0.5)
        feed.history(5)
        fake.misbehave("500", "/v1/exchange/candlesticks", times=100)
        assert feed.poll() == []
        time.sleep(0.6)
        assert feed.stale
        assert feed.poll() == []  # backing off: not even asked
    finally:
        hub.stop()


def _download(fake: FakeBluefinPro, *args: str) -> int:
    os.environ["BLUEFIN_NETWORK"] = fake.url
    try:
        return main(["data", "download", "--symbol", "BTC-PERP", *args])
    finally:
        del os.environ["BLUEFIN_NETWORK"]


def test_download_pages_pro_candles_resumes_and_never_keeps_the_open_one(
    tmp_path: Path, real: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    server = FakeBluefinPro(symbols=("BTC-PERP",), cursor=2500)
    server.start()
    try:
        out = tmp_path / "btc.parquet"
        since = real["timestamp"].iloc[0].isoformat()
        until = real["timestamp"].iloc[1200].isoformat()
        assert _download(server, "--since", since, "--until", until, "--out", str(out)) == 0
        first = read_candles(out)
        assert len(first) == 1200 and first["close"].tolist() == on_tick(real["close"].iloc[:1200])
        server.misbehave("429", "/v1/exchange/candlesticks", retry_after_s=0.1)  # retried, not fatal
        assert _download(server, "--since", since, "--out", str(out)) == 0
        full = read_candles(out)
        assert len(full) == 2500  # rows 0..2499; row 2500 is the open candle
        assert full["timestamp"].is_monotonic_increasing and not full["timestamp"].duplicated().any()
        assert full["close"].tolist() == on_tick(real["close"].iloc[:2500])
        assert "resumed after" in capsys.readouterr().out
        mark = tmp_path / "btc-mark.parquet"
        assert (
            _download(server, "--since", since, "--until", until, "--price", "mark", "--out", str(mark)) == 0
        )
        assert len(read_candles(mark)) == 1200
        funding = tmp_path / "funding.parquet"
        assert _download(server, "--since", since, "--until", until, "--funding", "--out", str(funding)) == 0
        rates = pd.read_parquet(funding)
        assert len(rates) == 20  # 1,200 minutes: hourly rates
        assert rates["time"].is_monotonic_increasing and rates["rate"].abs().max() < 0.01
    finally:
        server.stop()
