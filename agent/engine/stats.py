"""Trade statistics of the engine's closed trades (the risk gate's sizing reads them) and the correlation
of the traded markets' returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from agent.execution.orders import OrderExecutor
from agent.journal.store import Store
from agent.risk.sizing import TradeStats
from shared.market_structure import correlation_matrix
from shared.models import Candle


class TradeRecord:
    """Win rate, payoff and streaks of closed trades, of all and by signal source."""

    def __init__(self, store: Store, executor: OrderExecutor) -> None:
        self.store = store
        self.executor = executor
        self._pnls: dict[str | None, list[float]] | None = None  # closed trades' pnl: all (None), by source
        self._pnls_seen = 0  # how many of the executor's closed trades are in _pnls
        self._stats: dict[str | None, TradeStats] = {}

    def trade_stats(self, source: str | None = None, refresh: bool = True) -> TradeStats:
        """Win rate, payoff and streaks of the journal's closed trades, of one signal source or of all. The
        journal is read once; after that the trades this engine books are added as they close (it is their
        only writer). ``refresh=False``: as last computed."""
        if self._pnls is None:
            with self.store.transaction() as records:
                rows = records.trade_pnls()
            self._pnls = {None: []}
            self._add_trades(rows)
            self._pnls_seen = len(self.executor.closed_trades)
        elif refresh and self._pnls_seen < len(self.executor.closed_trades):
            self._add_trades(self.executor.closed_trades[self._pnls_seen :])
            self._pnls_seen = len(self.executor.closed_trades)
        return self._stats.get(source, TradeStats())

    def _add_trades(self, trades: Sequence[tuple[str, float]]) -> None:
        assert self._pnls is not None
        for name, pnl in trades:
            self._pnls[None].append(pnl)
            self._pnls.setdefault(name, []).append(pnl)
        for source in {None, *(name for name, _ in trades)}:
            self._stats[source] = TradeStats.from_pnls(self._pnls[source])


def correlations(
    candles: Mapping[str, Sequence[Candle]], window: int = 240
) -> dict[str, dict[str, float | None]]:
    """Correlation of 1m log returns across the traded symbols over their common candles (empty with fewer
    than two symbols; None where two symbols share too few candles)."""
    if len(candles) < 2:
        return {}
    closes = {
        symbol: pd.Series([c.close for c in rows], index=pd.DatetimeIndex([c.open_time for c in rows]))
        for symbol, rows in candles.items()
    }
    matrix = correlation_matrix(closes, window)
    return {
        str(k): {str(i): None if pd.isna(v) else round(float(v), 4) for i, v in row.items()}
        for k, row in matrix.to_dict().items()
    }
