"""The engine's records in memory (backtests) and in the database (live, paper): the same answers, the same
conflicts, and the same tables once a backtest has written them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from agent.backtest.run import BacktestRequest, run_backtest
from agent.execution.lifecycle import ALLOWED
from agent.execution.orders import OrderExecutor
from agent.journal.events import Journal
from agent.journal.store import TABLES, Conflict, DatabaseStore, MemoryStore, Store
from shared.db import (
    AlgoRow,
    Database,
    DecisionRow,
    EventRow,
    FillRow,
    OrderRow,
    PositionPlanRow,
    PositionRow,
    SignalRow,
    TradeRow,
)
from shared.exchange.paper import PaperConfig, PaperExchange
from shared.models import Fill, OrderResult, OrderStatus, Side
from tests.unit.agent.backtest.test_backtest import alerts, data  # noqa: F401 - fixtures
from tests.unit.agent.backtest.test_fast_forward import CONFIGS

T0 = datetime(2022, 1, 3, 12, 0, tzinfo=UTC)
WALL_CLOCK = {"created_at", "updated_at", "received_at"}  # when a row was written, not market time


def _tables(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every engine table's rows as comparable values: wall-clock columns left out, random client and
    exchange ids replaced by the order's id (the same order gets the same id in both stores)."""
    with db.session() as session:
        rows = {t.__tablename__: list(session.scalars(select(t))) for t in TABLES}
        ids = {o.client_id: f"order#{o.id}" for o in rows["orders"]}
        ids.update({o.exchange_id: f"exchange order#{o.id}" for o in rows["orders"] if o.exchange_id})

    def value(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: value(v) for k, v in item.items() if k not in WALL_CLOCK}
        if isinstance(item, list):
            return [value(v) for v in item]
        if not isinstance(item, str):
            return item
        head, _, fill = item.rpartition("-")  # a fill's trade id: its order's exchange id, its number
        return ids.get(item) or (f"{ids[head]}-{fill}" if head in ids else item)

    return {
        name: [
            value({c.key: getattr(r, c.key) for c in r.__table__.columns if c.key not in WALL_CLOCK})
            for r in table
        ]
        for name, table in rows.items()
    }


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_backtest_writes_the_same_records_from_memory_as_through_the_database(
    name: str,
    tmp_path: Path,
    data: Path,  # noqa: F811
    alerts: Path,  # noqa: F811
) -> None:
    overrides = {**CONFIGS[name], "signals_replay_file": str(alerts)}
    tables = {}
    for in_memory in (True, False):
        url = f"sqlite:///{tmp_path / f'{in_memory}.db'}"
        request = BacktestRequest(
            {"BTC-PERP": data}, overrides=overrides, progress=False, funding_rate=2e-5,
            database_url=url, records_in_memory=in_memory,
        )  # fmt: skip
        result = run_backtest(request)
        tables[in_memory] = _tables(Database(url))
        assert len(result.trades) == len(tables[in_memory]["trades"])
    memory, database = tables[True], tables[False]
    assert len(memory["trades"]) >= 5 and len(memory["events"]) > len(memory["orders"]) > 10
    if name != "follow the SMA cross":  # the others cover stops, partial targets and plans, not only entries
        assert {"stop_loss", "partial_take_profit", "entry"} <= {o["role"] for o in memory["orders"]}
        assert {OrderStatus.CANCELED.value, OrderStatus.FILLED.value} <= {
            o["status"] for o in memory["orders"]
        }
    for table in memory:
        assert memory[table] == database[table], table


@pytest.fixture(params=["database", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    db = Database("sqlite://")
    db.migrate()
    yield DatabaseStore(db) if request.param == "database" else MemoryStore(db)
    db.dispose()


def _signal(key: str) -> SignalRow:
    return SignalRow(idempotency_key=key, source="tradingview", symbol="BTC-PERP", action="buy", raw={})


def _decision(signal_id: int) -> DecisionRow:
    return DecisionRow(signal_id=signal_id, analyst="rules", action="BUY", confidence=0.7, rationale="test")


def _plan(stop: float) -> PositionPlanRow:
    return PositionPlanRow(
        symbol="BTC-PERP", side="BUY", entry_client_id="e", entry_price=1.0, initial_quantity=1.0,
        best_price=1.0, opened_at=T0, stop_price=stop,
    )  # fmt: skip


def _order(client_id: str, **values: Any) -> OrderRow:
    fields = {"symbol": "BTC-PERP", "side": "BUY", "order_type": "MARKET", "quantity": 1.0,
              "status": OrderStatus.PENDING_SUBMIT.value, **values}  # fmt: skip
    return OrderRow(client_id=client_id, **fields)


def _count(store: Store) -> tuple[int, ...]:
    with store.transaction() as records:
        return (
            len(records.pending_signals(100)), len(records.client_ids()),
            len(records.fills("c1")), len(records.orders([s.value for s in OrderStatus])),
        )  # fmt: skip


def test_conflicts_change_nothing(store: Store) -> None:
    with store.transaction() as records:
        records.add_signal(_signal("a"))
        records.add_signal(_signal("b"))
    with pytest.raises(Conflict), store.transaction() as records:
        records.add_signal(_signal("a"))
    assert _count(store) == (2, 0, 0, 0)
    with store.transaction() as records:
        first, second = records.pending_signals(10)
        records.add_decision(_decision(first.id))
        assert records.decided(first.id) and not records.decided(second.id)
        assert records.pending_signals(10) == [second]
    with pytest.raises(Conflict), store.transaction() as records:
        records.add_decision(_decision(first.id))
    with store.transaction() as records:
        assert [s.id for s in records.pending_signals(10)] == [second.id]
    with store.transaction() as records:
        records.add_plan(_plan(stop=0.9))
    with pytest.raises(Conflict), store.transaction() as records:
        records.add_plan(_plan(stop=0.5))
    with store.transaction() as records:
        stored = records.plan("BTC-PERP")
        assert stored is not None and stored.stop_price == 0.9
        assert records.update_plan("BTC-PERP", {"stop_price": 0.95})
        assert not records.update_plan("ETH-PERP", {"stop_price": 0.9})
        signal = records.signal(first.id)
        assert signal is not None and signal.idempotency_key == "a"
    with store.transaction() as records:
        stored = records.plan("BTC-PERP")
        assert stored is not None and stored.stop_price == 0.95
        records.add_order(_order("c1"))
        records.add_fill(FillRow(trade_id="t1", client_id="c1", symbol="BTC-PERP", side="BUY", quantity=1.0,
                                 price=1.0, fee=0.0, time=T0))  # fmt: skip
    with pytest.raises(Conflict), store.transaction() as records:
        records.add_order(_order("c1", quantity=2.0))
    with pytest.raises(Conflict), store.transaction() as records:
        records.add_fill(FillRow(trade_id="t1", client_id="c1", symbol="BTC-PERP", side="BUY", quantity=5.0,
                                 price=1.0, fee=0.0, time=T0))  # fmt: skip
    assert _count(store) == (1, 1, 1, 1)
    with store.transaction() as records:
        order = records.order("c1")
        assert order is not None and order.quantity == 1.0 and records.fill_booked("t1")
        assert not records.fill_booked("t2")


def test_a_result_applied_twice_books_its_fill_once(store: Store) -> None:
    """Fills are deduplicated by trade id (DESIGN.md), in memory as in the database."""
    executor = OrderExecutor(store, PaperExchange(None, PaperConfig()), Journal(None))
    with store.transaction() as records:
        records.add_order(_order("c1"))
    fill = Fill("t1", "c1", "BTC-PERP", Side.BUY, 1.0, 40_000.0, 2.0, T0)
    result = OrderResult("c1", "x1", OrderStatus.FILLED, 1.0, 40_000.0, (fill,))
    executor.apply_result(result)
    executor.apply_result(result)
    with store.transaction() as records:
        position = records.position("BTC-PERP")
        assert position is not None and position.quantity == 1.0 and position.fees == 2.0
        assert [f.trade_id for f in records.fills("c1")] == ["t1"]
        order = records.order("c1")
        assert order is not None and order.status == OrderStatus.FILLED.value


def test_latest_entry_brings_its_decision_and_signal(store: Store) -> None:
    with store.transaction() as records:
        records.add_signal(_signal("a"))  # committed before it is decided, as the engine does
    with store.transaction() as records:
        records.add_decision(_decision(1))
        records.add_order(_order("entry", signal_id=1, decision_id=1, filled_quantity=1.0))
        records.add_order(_order("stop", reduce_only=True, filled_quantity=1.0, role="stop_loss"))
        records.add_order(_order("unfilled"))
    with store.transaction() as records:
        order, decision, signal = records.latest_entry("BTC-PERP", "BUY")
        assert order is not None and order.client_id == "entry"
        assert decision is not None and decision.id == 1 and decision.rationale == "test"
        assert signal is not None and signal.idempotency_key == "a"
        assert records.latest_entry("BTC-PERP", "SELL") == (None, None, None)


def test_running_algos_are_those_still_running(store: Store) -> None:
    with store.transaction() as records:
        for number, status in enumerate(["RUNNING", "DONE", "RUNNING", "CANCELED"]):
            records.add_algo(AlgoRow(client_id=f"algo-{number}", kind="twap", symbol="BTC-PERP", side="BUY",
                                     quantity=1.0, status=status))  # fmt: skip
    with store.transaction() as records:
        assert records.running_algos() == ["algo-0", "algo-2"]
        algo = records.algo("algo-1")
        assert algo is not None and algo.status == "DONE" and algo.slices == 1 and records.algo("x") is None


def test_pending_signals_come_oldest_first_up_to_the_limit(store: Store) -> None:
    with store.transaction() as records:
        for key in "abc":
            records.add_signal(_signal(key))
    with store.transaction() as records:
        assert [s.idempotency_key for s in records.pending_signals(2)] == ["a", "b"]


def test_records_in_memory_need_an_empty_database_and_replace_its_tables(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    memory = MemoryStore(db)
    with memory.transaction() as records:
        records.add_signal(_signal("a"))
    with memory.transaction() as records:
        records.add_decision(_decision(1))
        records.add_algo(AlgoRow(client_id="algo-1", kind="twap", symbol="BTC-PERP", side="BUY",
                                 quantity=1.0, status="RUNNING"))  # fmt: skip
        records.add_algo(AlgoRow(client_id="algo-2", kind="iceberg", symbol="BTC-PERP", side="BUY",
                                 quantity=1.0, status="DONE"))  # fmt: skip
        records.event("signal", {"id": 1})
        records.set_state("k", {"v": 1})
    memory.persist()
    memory.persist()  # the day's report, then the end of the run: written once
    with db.session() as session:
        assert [s.idempotency_key for s in session.scalars(select(SignalRow))] == ["a"]
        assert [d.signal_id for d in session.scalars(select(DecisionRow))] == [1]
        assert [e.payload for e in session.scalars(select(EventRow))] == [{"id": 1}]
        assert [a.status for a in session.scalars(select(AlgoRow))] == ["RUNNING", "DONE"]
    with DatabaseStore(db).transaction() as records:
        assert records.state("k") == {"v": 1} and records.running_algos() == ["algo-1"]
    with pytest.raises(ValueError, match="signals, decisions"):
        MemoryStore(db)


STATUSES = [s.value for s in OrderStatus if s is not OrderStatus.EXTERNAL]
ORDER_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["BTC-PERP", "ETH-PERP"]),
        st.sampled_from(["BUY", "SELL"]),
        st.sampled_from(["entry", "stop_loss", "partial_take_profit", "twap_slice"]),
        st.booleans(),  # reduce-only
        st.lists(st.sampled_from(STATUSES), max_size=3),  # the statuses it goes through
        st.integers(0, 4),  # its parent: an earlier order (0: none)
    ),
    max_size=25,
)


@given(ORDER_STEPS)
@example(  # a filled entry, then a filled reduce-only order of the same side: the entry is still the entry
    [
        ("BTC-PERP", "BUY", "entry", False, ["FILLED"], 0),
        ("BTC-PERP", "BUY", "stop_loss", True, ["FILLED"], 1),
    ]
)
@settings(max_examples=60, deadline=None)
def test_order_queries_answer_the_same_in_memory_and_in_the_database(steps: list[Any]) -> None:
    """Orders added and moved through the state machine's statuses (as the executor does: the row read, then
    changed in place): every query the engine makes answers alike, however often it asked before (memory
    stops looking at orders in a terminal status as it goes)."""
    answers = []
    for kind in ("database", "memory"):
        db = Database("sqlite://")
        db.migrate()
        store: Store = DatabaseStore(db) if kind == "database" else MemoryStore(db)
        seen: list[Any] = []
        for number, (symbol, side, role, reduce_only, statuses, parent) in enumerate(steps, start=1):
            with store.transaction() as records:
                records.add_order(
                    OrderRow(
                        client_id=f"c{number}", symbol=symbol, side=side, order_type="MARKET", quantity=1.0,
                        reduce_only=reduce_only, role=role, status=OrderStatus.PENDING_SUBMIT.value,
                        parent_client_id=f"c{parent}" if 0 < parent < number else None,
                    )
                )  # fmt: skip
            for status in statuses:
                with store.transaction() as records:
                    row = records.order(f"c{number}")
                    assert row is not None
                    if OrderStatus(status) not in ALLOWED[OrderStatus(row.status)]:
                        continue  # the executor moves orders through the state machine only
                    row.status = status
                    row.filled_quantity = 1.0 if status == OrderStatus.FILLED.value else 0.0
                with store.transaction() as records:
                    seen.append(_queries(records))
        answers.append(seen)
        db.dispose()
    assert answers[0] == answers[1]


def _queries(records: Any) -> tuple[Any, ...]:
    def ids(rows: list[OrderRow]) -> list[str]:
        return [r.client_id for r in rows]

    working = ("PENDING_SUBMIT", "OPEN", "PARTIALLY_FILLED")
    entry = records.latest_entry("BTC-PERP", "BUY")
    return (
        ids(records.orders(working)),
        ids(records.orders(working, "BTC-PERP", roles=("stop_loss", "partial_take_profit"))),
        ids(records.orders(("PENDING_SUBMIT",), "ETH-PERP")),
        ids(records.orders(("FILLED",), roles=("partial_take_profit",), parent="c1")),
        ids(records.orders(("PENDING_SUBMIT", "OPEN", "PARTIALLY_FILLED", "LOST"))),
        ids(records.orders(("OPEN", "FILLED", "CANCELED"))),
        ids(records.orders(("REJECTED",), "ETH-PERP")),
        ids(records.children("c2")),
        sorted(records.client_ids()),
        entry[0].client_id if entry[0] is not None else None,
    )


def test_positions_are_the_open_ones_and_the_one_asked_for(store: Store) -> None:
    with store.transaction() as records:
        for symbol, quantity in (("SOL-PERP", 0.0), ("ETH-PERP", 0.0), ("BTC-PERP", 0.5)):
            records.add_position(PositionRow(symbol=symbol, quantity=quantity, realized_pnl=1.0))
    with store.transaction() as records:
        assert [p.symbol for p in records.positions()] == ["BTC-PERP"]
        assert [p.symbol for p in records.positions(also="SOL-PERP")] == ["BTC-PERP", "SOL-PERP"]
        assert [p.symbol for p in records.positions(also="ETH-PERP")] == ["BTC-PERP", "ETH-PERP"]
        eth = records.position("ETH-PERP")
        assert eth is not None and eth.realized_pnl == 1.0 and eth.entry_price == 0.0


def test_trades_are_read_back_in_the_order_they_closed(store: Store) -> None:
    for number, (source, pnl) in enumerate([("tradingview", 1.0), ("internal:ema_cross", -2.0)]):
        with store.transaction() as records:
            records.add_trade(
                TradeRow(
                    symbol="BTC-PERP", side="BUY", quantity=1.0, entry_price=1.0, exit_price=2.0, pnl=pnl,
                    fees=0.0, opened_at=T0, closed_at=T0, exit_reason="signal",
                    close_client_id=f"c{number}", signal_source=source,
                )
            )  # fmt: skip
    with store.transaction() as records:
        assert records.trade_pnls() == [("tradingview", 1.0), ("internal:ema_cross", -2.0)]


def test_records_written_to_postgresql_leave_its_ids_ready_for_what_comes_next(
    postgres_url: str,
    data: Path,  # noqa: F811
) -> None:
    """A backtest written to PostgreSQL gives explicit ids; the sequences must follow them, or the next row
    inserted there (a paper run on the same database, a second persist) would collide."""
    overrides = CONFIGS["follow the SMA cross"]
    run_backtest(
        BacktestRequest({"BTC-PERP": data}, overrides=overrides, progress=False, database_url=postgres_url)
    )
    db = Database(postgres_url)
    tables = _tables(db)
    assert len(tables["signals"]) >= 5 and len(tables["orders"]) >= 5
    store = DatabaseStore(db)
    with store.transaction() as records:
        records.add_signal(_signal("after the backtest"))
        records.add_order(_order("after the backtest"))
    with store.transaction() as records:
        (pending,) = records.pending_signals(10)
        assert pending.id == len(tables["signals"]) + 1
        order = records.order("after the backtest")
        assert order is not None and order.id == len(tables["orders"]) + 1
    db.dispose()
