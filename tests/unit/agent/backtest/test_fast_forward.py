"""Fast-forward over quiet candles changes nothing: the same trades and the same equity, minute by minute,
as stepping every candle, across the rules that can act between signals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agent.backtest.fast_forward import FastForward
from agent.backtest.run import BacktestRequest, backtest_settings, build_backtest_engine, run_backtest
from agent.engine.engine import Engine
from shared.db import Database
from shared.marketdata.feeds import MarketFeed, load_candle_csv
from shared.models import Candle, OrderRequest, Side
from tests.conftest import REAL_CANDLES
from tests.unit.agent.backtest.test_backtest import ROWS, alerts, data  # noqa: F401 - fixtures

FOLLOW = {
    "ai_model_provider": "follow", "internal_signals": "sma_cross", "internal_signal_timeframe": "15m",
    "stop_atr_multiple": 0, "partial_take_profits": "off", "trailing_stop": "off", "stagnant_exit_hours": 0,
    "level_break_exit": False, "review_exits": False, "min_confidence": 0, "kelly_fraction": 0,
}  # fmt: skip
CONFIGS: dict[str, dict[str, Any]] = {
    "rules, stops, partials, ATR trailing, exits": {"internal_signals": "ema_cross", "kelly_fraction": 0},
    "follow the SMA cross": FOLLOW,
    "tight breakers, pct trailing, time exits": {
        "internal_signals": "ema_cross",
        "internal_signal_timeframe": "5m",
        "kelly_fraction": 0,
        "max_daily_loss": 0.002,
        "max_drawdown": 0.004,
        "trailing_stop": "pct:0.3",
        "stagnant_exit_hours": 2,
    },
    "Kelly on, with a take-profit": {"internal_signals": "ema_cross", "partial_take_profits": "1:0.3,2:0.3"},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fast_forward_gives_the_same_trades_and_equity(name: str, data: Path, alerts: Path) -> None:  # noqa: F811
    overrides = {**CONFIGS[name], "signals_replay_file": str(alerts)}
    runs = {
        fast: run_backtest(
            BacktestRequest(
                {"BTC-PERP": data}, overrides=overrides, progress=False, fast_forward=fast, funding_rate=2e-5
            )
        )
        for fast in (False, True)
    }
    slow, fast = runs[False], runs[True]
    assert len(slow.trades) >= 5
    assert slow.trades == fast.trades
    assert slow.equity.index.equals(fast.equity.index)
    assert np.array_equal(slow.equity.to_numpy(), fast.equity.to_numpy())
    assert slow.metrics == fast.metrics


def test_most_candles_are_skipped(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    skipped: list[int] = []
    stepped: list[Candle] = []
    original_skip, original_step = FastForward.skip, Engine.on_candle

    def counting(self: FastForward, count: int) -> Any:
        skipped.append(count)
        return original_skip(self, count)

    def stepping(self: Engine, feed: MarketFeed, candle: Candle) -> None:
        stepped.append(candle)
        original_step(self, feed, candle)

    monkeypatch.setattr(FastForward, "skip", counting)
    monkeypatch.setattr(Engine, "on_candle", stepping)
    result = run_backtest(BacktestRequest({"BTC-PERP": data}, overrides=FOLLOW, progress=False))
    assert sum(skipped) + len(stepped) == result.candles
    assert sum(skipped) > 0.8 * result.candles
    # the SMA crosses are known ahead: only their candles and the trades' go through, not every 15m close
    assert len(stepped) < 0.25 * result.candles / 15
    # about one candle per signal (its cross): our own orders' results need no extra candle to be taken in
    assert len(stepped) <= result.signals + 5


@pytest.fixture(scope="module")
def second_market(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:  # noqa: F811
    """A second market on the same minutes: a later stretch of the real month at a tenth of the price
    (other crosses, other positions), with a few minutes missing (where the markets' minutes differ)."""
    btc = load_candle_csv(data)
    later = load_candle_csv(REAL_CANDLES).iloc[20_000 : 20_000 + len(btc)].reset_index(drop=True)
    other = later[["open", "high", "low", "close", "volume"]].assign(timestamp=btc["timestamp"])
    other[["open", "high", "low", "close"]] /= 10
    other = other.drop(index=[1_500, 1_501, 3_333, 4_800]).reset_index(drop=True)
    path = tmp_path_factory.mktemp("eth") / "eth.csv"
    other.assign(timestamp=other["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "name", ["rules, stops, partials, ATR trailing, exits", "tight breakers, pct trailing, time exits"]
)
def test_two_markets_skip_together_with_the_same_results(
    name: str,
    data: Path,  # noqa: F811
    alerts: Path,  # noqa: F811
    second_market: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    overrides = {**CONFIGS[name], "signals_replay_file": str(alerts)}
    skipped: list[int] = []
    original_skip = FastForward.skip

    def counting(self: FastForward, count: int) -> Any:
        skipped.append(count * len(self.feeds))
        return original_skip(self, count)

    monkeypatch.setattr(FastForward, "skip", counting)
    markets = {"BTC-PERP": data, "ETH-PERP": second_market}
    runs = {
        fast: run_backtest(
            BacktestRequest(
                markets, overrides=overrides, progress=False, fast_forward=fast, funding_rate=2e-5
            )
        )
        for fast in (False, True)
    }
    slow, fast = runs[False], runs[True]
    assert {t.symbol for t in slow.trades} == {"BTC-PERP", "ETH-PERP"}
    assert slow.trades == fast.trades
    assert slow.equity.index.equals(fast.equity.index)
    assert np.array_equal(slow.equity.to_numpy(), fast.equity.to_numpy())
    assert slow.metrics == fast.metrics
    assert slow.candles == fast.candles == 2 * 6_000 - 2 * 300 - 4
    assert sum(skipped) > 0.6 * fast.candles


def test_the_equity_of_skipped_minutes_is_what_each_market_step_sees(data: Path, second_market: Path) -> None:  # noqa: F811
    """Positions in both markets: the equity after each market's candle of each minute, computed at once,
    equals the paper exchange's account after the same candles taken one market after the other (the first
    market at its new close while the second still stands at its previous one)."""
    request = BacktestRequest({"BTC-PERP": data, "ETH-PERP": second_market}, progress=False)
    settings = backtest_settings(request)
    db = Database(settings.database_url)
    db.migrate()
    engine = build_backtest_engine(settings, request, db)
    engine.prepare()
    exchange = engine.exchange
    for number, (symbol, side, quantity) in enumerate(
        (("BTC-PERP", Side.BUY, 0.05), ("ETH-PERP", Side.SELL, 0.4))
    ):
        exchange.place_order(OrderRequest(f"open-{number}", symbol, side, quantity, leverage=3))
    skipper = FastForward(engine)
    assert skipper.quiet({"BTC-PERP": ROWS, "ETH-PERP": ROWS - 4}) >= 0  # picks the markets with candles left
    computed = skipper._equities(50)
    stepped = np.zeros((50, 2))
    for minute in range(50):
        for column, feed in enumerate(skipper.feeds):
            candle = feed.next_candle()
            close_time = candle.open_time + pd.Timedelta(minutes=1)
            exchange.on_price(feed.symbol, candle.close, close_time, candle.high, candle.low)  # type: ignore[attr-defined]
            stepped[minute, column] = exchange.account().equity
    assert len({round(v, 6) for v in stepped[:, 0] - stepped[:, 1]}) > 1  # the two steps of a minute differ
    assert np.array_equal(computed, stepped)
