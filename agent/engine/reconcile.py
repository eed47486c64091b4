"""Reconciliation: our books against the exchange's orders and positions.

On start (and while paused) every order of unknown outcome is settled and whatever we did not make is
found and marked EXTERNAL (no new entries in its market); while trading, what the exchange reports on its
own (fills, triggers, cancels, a simulated exchange's liquidations) is folded in as it comes, every market
whose books moved is protected at once, and our positions are compared with the exchange's (a drift seen
twice in a row is EXTERNAL until it agrees again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from agent.engine.decisions import IN_FLIGHT
from shared.db import OrderRow
from shared.errors import Temporary
from shared.logs import log_event
from shared.models import OrderStatus, OrderType
from shared.serialize import order_dict

if TYPE_CHECKING:
    from agent.engine.engine import Engine

logger = logging.getLogger(__name__)
DEAD_MAN_SWITCH_MS = 60_000


class Reconciler:
    """Keeps the engine's books in step with the exchange (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.external: dict[str, str] = {}  # market -> why it is blocked for new entries
        self._drift: dict[str, str] = {}  # markets whose position disagreed with the exchange last time
        self._drifted: set[str] = set()  # markets check_positions marked EXTERNAL (it releases them too)
        self._exchange_revision: int | None = None

    def reconcile(self) -> None:
        """Match the exchange's orders and positions to ours before any decision. Orders and positions we
        did not make are EXTERNAL and block new entries in their market; if the exchange cannot be read,
        trading stays paused and the status says why."""
        engine = self.engine
        try:
            with engine.lock:
                resolved = engine.executor.reconcile_pending()
                self.external = self.find_external()
        except Temporary as exc:
            engine.pause(f"reconciliation failed, retrying: {exc}")
            return
        for symbol, reason in self.external.items():
            log_event(logger, "external_activity", logging.ERROR, symbol=symbol, reason=reason, alert=True)
        engine.status.state, engine.status.reason = "running", ""
        with engine.lock, engine.store.transaction() as records:
            held = [r.symbol for r in records.positions() if r.quantity]
        with engine.lock:
            self.protect(held)  # a fill found now (or before a crash): protected now, not at the next candle
        engine.algos.running()  # whether any algo survived a restart
        engine.last_equity = engine.exchange.account().equity
        engine.guard.update(engine.market_now(), engine.last_equity)  # the day's starting equity, at once
        log_event(logger, "engine_running", reconciled_orders=resolved, external=sorted(self.external))

    def refresh_dead_man_switch(self) -> None:
        """On Bluefin, push the cancel-on-disconnect timer forward: if this loop dies, open orders go."""
        engine = self.engine
        try:
            engine.exchange.refresh_cancel_on_disconnect(DEAD_MAN_SWITCH_MS)
        except Temporary as exc:
            log_event(logger, "dead_man_switch_refresh_failed", logging.WARNING, error=str(exc))

    def maintain_orders(self, only: set[str] | None = None, protect: bool = True) -> set[str]:
        """Fold in what happened to open orders (fills of entries, stops and targets) and step the algos;
        ``only``: the orders the exchange says changed (the others need no look-up). With ``protect``, every
        market whose books moved is protected at once (its stop and targets placed, or cancelled when it
        went flat), not at its next candle. Returns those markets."""
        engine = self.engine
        with engine.lock:
            before = dict(engine.executor.revision)
            self._book_liquidations()
            engine.executor.reconcile_pending(only)
            engine.algos.step(engine.market_now())
            moved = {s for s, r in engine.executor.revision.items() if r != before.get(s)}
            if protect:
                self.protect(moved)
        return moved

    def protect(self, symbols: Iterable[str]) -> None:
        engine = self.engine
        for symbol in sorted(symbols):
            if symbol in engine.views and symbol not in self.external:
                engine.manager.protect(symbol, engine.views[symbol])

    @property
    def exchange_in_sync(self) -> bool:
        """Has every change the exchange reported been folded into our books?"""
        engine = self.engine
        return engine.exchange.revision == self._exchange_revision

    def acknowledge_exchange(self) -> bool:
        """Take the exchange's new revision as seen when it brings nothing to fold in (our own orders'
        results, already applied): what the next candle's step would do, without stepping it. False when
        there is something (an order that changed on its own, a liquidation), left for that step."""
        engine = self.engine
        if (
            not engine.market_driver.simulated
            or engine.exchange.changes_pending
            or (engine.market_driver.liquidations_pending)
        ):
            return False
        self._exchange_revision = engine.exchange.revision
        return True

    def exchange_changed(self) -> bool:
        engine = self.engine
        revision = engine.exchange.revision
        if revision is None or revision == self._exchange_revision:
            return False
        self._exchange_revision = revision
        return True

    def fold_exchange_changes(self) -> set[str]:
        """What the exchange reported on its own since the last look (fills of entries, stops, targets,
        cancels), folded into our books at once, and every market whose books moved protected at once (its
        stop and targets placed, or cancelled when it went flat): not at the next candle. Returns those
        markets."""
        engine = self.engine
        if not self.exchange_changed():
            return set()
        with engine.lock:
            changed = engine.exchange.drain_changed_orders()
            if changed is None or changed or engine.market_driver.liquidations_pending:
                return self.maintain_orders(changed)
        return set()

    def _book_liquidations(self) -> None:
        """A simulated exchange's liquidations: recorded as our exit orders and booked like any fill."""
        engine = self.engine
        for result in engine.market_driver.drain_liquidations():
            with engine.store.transaction() as records:
                records.add_order(
                    OrderRow(
                        client_id=result.client_id, symbol=result.symbol,
                        side=result.side.value if result.side else "?", order_type="MARKET",
                        quantity=result.quantity, reduce_only=True, status=OrderStatus.PENDING_SUBMIT.value,
                        role="exit", exit_kind="liquidation", reason=result.reason or "liquidated",
                    )
                )  # fmt: skip
            engine.executor.apply_result(result)
            log_event(logger, "liquidated", logging.ERROR, symbol=result.symbol, alert=True)

    def find_external(self) -> dict[str, str]:
        engine = self.engine
        external: dict[str, str] = {}
        batch = engine.journal.pending()
        # the exchange is read first (under the engine lock: no order of ours goes out meanwhile), so a read
        # that fails leaves nothing half-written
        open_orders, positions = engine.exchange.open_orders(), engine.exchange.positions()
        with engine.store.transaction() as records:
            known = records.client_ids()
            for result in open_orders:
                if result.client_id in known:
                    continue
                symbol = result.symbol
                row = OrderRow(
                    client_id=result.client_id,
                    symbol=symbol,
                    side=result.side.value if result.side else "?",
                    order_type=result.order_type.value if result.order_type else "?",
                    quantity=result.quantity,
                    status=OrderStatus.EXTERNAL.value,
                    exchange_id=result.exchange_id,
                    reason="open on the exchange, not placed by this platform",
                )
                records.add_order(row)
                records.flush()
                batch.record(records, "order", order_dict(row))
                external[symbol] = f"external open order {result.client_id}"
            theirs = {p.symbol: p.quantity for p in positions}
            ours = {r.symbol: r.quantity for r in records.positions()}
            for symbol in sorted(set(theirs) | set(ours)):
                if abs(ours.get(symbol, 0.0) - theirs.get(symbol, 0.0)) > 1e-9:
                    external[symbol] = (
                        f"position: ours {ours.get(symbol, 0.0)} vs exchange {theirs.get(symbol, 0.0)}"
                    )
        batch.flush()
        return external

    def check_positions(self) -> dict[str, str]:
        """Compare our positions with the exchange's while trading (a liquidation or deleveraging the
        exchange did on its own, a trade made by hand): a market that disagrees twice in a row, with
        nothing of ours in flight there, is marked EXTERNAL (no new entries; exits still go) and alerted;
        one that agrees again is released. Returns the markets that disagree now."""
        engine = self.engine
        with engine.lock:
            if not self.exchange_in_sync:
                return dict(self._drift)  # something reported is still being folded in: ask next time
            theirs = {p.symbol: p.quantity for p in engine.exchange.positions()}
            with engine.store.transaction() as records:
                ours = {r.symbol: r.quantity for r in records.positions()}
                in_flight = {
                    o.symbol for o in records.orders(IN_FLIGHT) if o.order_type == OrderType.MARKET.value
                }
            now = {
                symbol: f"position: ours {ours.get(symbol, 0.0)} vs exchange {theirs.get(symbol, 0.0)}"
                for symbol in sorted(set(theirs) | set(ours))
                if abs(ours.get(symbol, 0.0) - theirs.get(symbol, 0.0)) > 1e-9 and symbol not in in_flight
            }
            for symbol, reason in now.items():
                if symbol in self._drift and symbol not in self.external:
                    self.external[symbol] = reason
                    self._drifted.add(symbol)
                    log_event(
                        logger, "position_drift", logging.ERROR, symbol=symbol, reason=reason, alert=True
                    )
            for symbol in self._drifted - set(now):
                self.external.pop(symbol, None)
                self._drifted.discard(symbol)
                log_event(logger, "position_drift_resolved", symbol=symbol)
            self._drift = now
        return now
