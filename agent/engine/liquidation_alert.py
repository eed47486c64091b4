"""The liquidation-distance alert: LIQUIDATION_ALERT_ATR (0 = off).

After each market step of the live loop, every open position's mark is compared with its liquidation price
(the exchange's, else the isolated-margin estimate of ``shared.exchange.margin`` at the order leverage), in
ATRs of RISK_ATR_TIMEFRAME. When the mark comes within LIQUIDATION_ALERT_ATR ATRs, one ``liquidation_alert``
event goes on the dashboard's stream and a ``liquidation_near`` warning is logged, which the notifier sends
(NOTIFY_URLS, kind ``liquidation``). It fires once per position: not again until the mark has moved back out,
beyond REARM_FACTOR x LIQUIDATION_ALERT_ATR ATRs (the hysteresis: a mark hovering at the threshold does not
alert on every candle), when a ``liquidation_alert`` with ``near`` false clears the dashboard's banner. A new
position (another side, or opened again) starts afresh.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shared.exchange.margin import liquidation_price
from shared.logs import log_event

if TYPE_CHECKING:
    from agent.engine.engine import Engine

logger = logging.getLogger(__name__)
REARM_FACTOR = 1.2  # back out: beyond this many times the threshold


@dataclass(frozen=True)
class LiquidationAlert:
    symbol: str
    quantity: float  # signed
    mark: float
    liquidation: float
    atr: float
    distance_atr: float  # |mark - liquidation| / ATR; 0 when the mark is beyond the liquidation price
    threshold_atr: float
    near: bool  # True: came within the threshold; False: moved back out

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def message(self) -> str:
        side = "long" if self.quantity > 0 else "short"
        return (
            f"{side} {abs(self.quantity):g}: mark {self.mark:,.2f} is {self.distance_atr:.1f} ATRs from the "
            f"liquidation price {self.liquidation:,.2f} (LIQUIDATION_ALERT_ATR {self.threshold_atr:g})"
        )


def distance_in_atr(quantity: float, mark: float, liquidation: float, atr: float) -> float:
    """How many ATRs the mark is from the liquidation price, on the safe side (0 at or beyond it)."""
    room = (mark - liquidation) if quantity > 0 else (liquidation - mark)
    return max(room, 0.0) / atr


class LiquidationWatch:
    """Which positions have been alerted, and the crossings of the threshold (see the module docstring)."""

    def __init__(self, threshold_atr: float) -> None:
        self.threshold_atr = threshold_atr
        self._alerted: dict[str, tuple[int, str]] = {}  # symbol -> the alerted position (side, opened)

    def observe(
        self, symbol: str, quantity: float, opened: str, mark: float | None, liquidation: float | None,
        atr: float | None,
    ) -> LiquidationAlert | None:  # fmt: skip
        """One position's state now; an alert when it has just crossed in (or back out)."""
        identity = (1 if quantity > 0 else -1, opened)
        if self._alerted.get(symbol, identity) != identity:
            del self._alerted[symbol]  # another position in this market: it starts afresh
        if self.threshold_atr <= 0 or not quantity or mark is None or liquidation is None or liquidation <= 0:
            return None
        if atr is None or not atr > 0:
            return None
        distance = distance_in_atr(quantity, mark, liquidation, atr)
        alerted = symbol in self._alerted
        if not alerted and distance <= self.threshold_atr:
            self._alerted[symbol] = identity
            near = True
        elif alerted and distance > self.threshold_atr * REARM_FACTOR:
            del self._alerted[symbol]
            near = False
        else:
            return None
        return LiquidationAlert(symbol, quantity, mark, liquidation, atr, distance, self.threshold_atr, near)

    def forget_closed(self, open_symbols: set[str]) -> list[str]:
        """Drop the alerted positions that are closed; their symbols (their banner is cleared)."""
        closed = [s for s in self._alerted if s not in open_symbols]
        for symbol in closed:
            del self._alerted[symbol]
        return closed

    def check(self, engine: Engine) -> list[LiquidationAlert]:
        """Every open position of the engine (the loop calls this after each market step): alerts on the
        stream and, coming within the threshold, a ``liquidation_near`` warning (notified)."""
        if self.threshold_atr <= 0:
            return []
        with engine.store.transaction() as records:
            rows = [(r.symbol, r.quantity, r.entry_price, r.opened_at) for r in records.positions()]
        # the exchange is asked only while something is open
        listed = (
            {p.position.symbol: p.liquidation_price for p in engine.exchange.exchange_positions()}
            if rows
            else {}
        )
        alerts: list[LiquidationAlert] = []
        for symbol, quantity, entry, opened in rows:
            liquidation = listed.get(symbol) or liquidation_price(
                entry, quantity, abs(quantity) * entry / engine.policy.order_leverage,
                engine.exchange.market_spec(symbol).maintenance_margin_ratio,
            )  # fmt: skip
            market = engine.markets.get(symbol)
            atr = market.indicator(engine.policy.atr_timeframe, "atr") if market is not None else None
            mark = engine.exchange.mark_price(symbol)
            alert = self.observe(symbol, quantity, str(opened), mark, liquidation, atr)
            if alert is not None:
                alerts.append(alert)
        for symbol in self.forget_closed({row[0] for row in rows}):
            engine.journal.publish("liquidation_alert", {"symbol": symbol, "near": False, "closed": True})
        for alert in alerts:
            engine.journal.publish("liquidation_alert", alert.as_dict())
            if alert.near:
                log_event(
                    logger, "liquidation_near", logging.WARNING, **alert.as_dict(), text=alert.message()
                )
            else:
                log_event(logger, "liquidation_clear", **alert.as_dict())
        return alerts
