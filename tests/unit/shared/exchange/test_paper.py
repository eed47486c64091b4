"""The paper exchange, checked by hand-computed examples and by property tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.db import Database
from shared.errors import Rejected, Temporary
from shared.exchange.margin import liquidation_price
from shared.exchange.paper import PaperConfig, PaperExchange
from shared.exchange.paper_books import MemoryBooks
from shared.marketdata.funding import FundingRate
from shared.marketdata.orderbook import OrderBook
from shared.models import OrderRequest, OrderResult, OrderStatus, OrderType, Side, TimeInForce
from tests.conftest import open_database

NOW = datetime(2022, 1, 3, 12, 0, tzinfo=UTC)
NO_SLIP = PaperConfig(slippage_bps=0.0)


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database | None]:
    """The books in SQLite and in PostgreSQL (paper trading), and in memory (None: a backtest's)."""
    if request.param == "memory":
        yield None
    else:
        yield from open_database(request, tmp_path, request.param)


def exchange(
    database: Database | None, config: PaperConfig = NO_SLIP, price: float = 40_000.0
) -> PaperExchange:
    paper = PaperExchange(database, config)
    paper.on_price("BTC-PERP", price, NOW)
    return paper


def order(client_id: str, side: Side, qty: float, **kw: object) -> OrderRequest:
    return OrderRequest(client_id, "BTC-PERP", side, qty, leverage=kw.pop("leverage", 3), **kw)  # type: ignore[arg-type]


def test_market_order_fills_at_mark_with_taker_fee(database: Database | None) -> None:
    paper = exchange(database)
    result = paper.place_order(order("c1", Side.BUY, 0.025))
    assert result.status is OrderStatus.FILLED and result.average_price == 40_000.0
    # 0.025 BTC x 40,000 = 1,000 USDC notional; taker 5 bps = 0.50; margin at 3x = 333.33
    assert result.fills[0].fee == pytest.approx(0.5)
    account = paper.account()
    assert account.balance == pytest.approx(9_999.5) and account.margin_used == pytest.approx(1000 / 3)
    paper.on_price("BTC-PERP", 42_000.0, NOW)
    assert paper.account().unrealized_pnl == pytest.approx(50.0)
    close = paper.place_order(order("c2", Side.SELL, 0.025, reduce_only=True))
    assert close.fills[0].fee == pytest.approx(0.525)  # 0.025 x 42,000 x 0.0005
    assert paper.account().balance == pytest.approx(10_000 - 0.5 + 50 - 0.525)
    assert paper.positions() == [] and paper.account().margin_used == 0


def test_slippage_model_without_a_book(database: Database | None) -> None:
    paper = exchange(database, PaperConfig(slippage_bps=10.0))
    assert paper.place_order(order("b", Side.BUY, 0.01)).average_price == pytest.approx(40_040.0)
    assert paper.place_order(order("s", Side.SELL, 0.01)).average_price == pytest.approx(39_960.0)


def test_market_order_walks_the_book(database: Database | None) -> None:
    paper = exchange(database)
    paper.on_book(
        OrderBook("BTC-PERP", NOW, ((39_999.0, 1.0),), ((40_001.0, 0.3), (40_005.0, 0.5), (40_010.0, 2.0)))
    )
    result = paper.place_order(order("c1", Side.BUY, 1.0, leverage=10))
    # 0.3 @ 40,001 + 0.5 @ 40,005 + 0.2 @ 40,010
    assert result.average_price == pytest.approx((0.3 * 40_001 + 0.5 * 40_005 + 0.2 * 40_010) / 1.0)
    assert [f.quantity for f in result.fills] == pytest.approx([0.3, 0.5, 0.2])
    ioc = paper.place_order(order("c2", Side.SELL, 3.0, leverage=10, time_in_force=TimeInForce.IOC))
    assert ioc.status is OrderStatus.CANCELED and ioc.filled_quantity == pytest.approx(1.0)
    fok = paper.place_order(order("c3", Side.SELL, 3.0, leverage=10, time_in_force=TimeInForce.FOK))
    assert (
        fok.status is OrderStatus.CANCELED
        and fok.filled_quantity == 0
        and "fill-or-kill" in (fok.reason or "")
    )


def test_resting_limit_fills_as_maker_when_a_candle_trades_through(database: Database | None) -> None:
    paper = exchange(database)
    result = paper.place_order(order("l1", Side.BUY, 0.1, order_type=OrderType.LIMIT, price=39_500.0))
    assert result.status is OrderStatus.OPEN and [o.client_id for o in paper.open_orders()] == ["l1"]
    paper.on_price("BTC-PERP", 39_800.0, NOW + timedelta(minutes=1), high=40_100.0, low=39_600.0)
    assert paper.get_order("l1").status is OrderStatus.OPEN  # type: ignore[union-attr]
    paper.on_price("BTC-PERP", 39_700.0, NOW + timedelta(minutes=2), high=39_900.0, low=39_450.0)
    filled = paper.get_order("l1")
    assert filled is not None and filled.status is OrderStatus.FILLED and filled.average_price == 39_500.0
    assert filled.fills[0].fee == pytest.approx(0.1 * 39_500 * 0.0002)  # maker fee


def test_post_only_that_would_cross_is_rejected(database: Database | None) -> None:
    paper = exchange(database)
    with pytest.raises(Rejected, match="post-only"):
        paper.place_order(
            order("p1", Side.BUY, 0.1, order_type=OrderType.LIMIT, price=40_100.0, post_only=True)
        )
    ok = paper.place_order(
        order("p2", Side.BUY, 0.1, order_type=OrderType.LIMIT, price=39_900.0, post_only=True)
    )
    assert ok.status is OrderStatus.OPEN


def test_stop_market_and_take_profit_trigger_on_the_candle(database: Database | None) -> None:
    paper = exchange(database)
    paper.place_order(order("e", Side.BUY, 0.1))
    stop = order(
        "sl", Side.SELL, 0.1, order_type=OrderType.STOP_MARKET, trigger_price=39_000.0, reduce_only=True
    )
    target = order(
        "tp", Side.SELL, 0.1, order_type=OrderType.TAKE_PROFIT, trigger_price=41_000.0, reduce_only=True
    )
    assert (
        paper.place_order(stop).status is OrderStatus.OPEN
        and paper.place_order(target).status is OrderStatus.OPEN
    )
    paper.on_price("BTC-PERP", 40_500.0, NOW + timedelta(minutes=1), high=41_200.0, low=40_400.0)
    tp = paper.get_order("tp")
    assert tp is not None and tp.status is OrderStatus.FILLED and tp.average_price == 41_000.0
    assert paper.positions() == []
    paper.on_price("BTC-PERP", 38_000.0, NOW + timedelta(minutes=2), high=40_000.0, low=37_900.0)
    sl = paper.get_order("sl")
    assert (
        sl is not None and sl.status is OrderStatus.CANCELED and sl.reason == "reduce-only: nothing to reduce"
    )


def test_stop_limit_becomes_a_limit_when_triggered(database: Database | None) -> None:
    paper = exchange(database)
    request = order(
        "sb", Side.BUY, 0.1, order_type=OrderType.STOP_LIMIT, trigger_price=40_500.0, price=40_550.0
    )
    paper.place_order(request)
    paper.on_price("BTC-PERP", 40_600.0, NOW + timedelta(minutes=1), high=40_700.0, low=40_560.0)
    assert paper.get_order("sb").status is OrderStatus.OPEN  # type: ignore[union-attr]  # triggered, limit not reached
    paper.on_price("BTC-PERP", 40_540.0, NOW + timedelta(minutes=2), high=40_600.0, low=40_520.0)
    assert paper.get_order("sb").average_price == 40_550.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("side", "expected"),
    [(Side.BUY, 40_000 * (1 - 1 / 10) / (1 - 0.03)), (Side.SELL, 40_000 * (1 + 1 / 10) / (1 + 0.03))],
)
def test_liquidation_price_matches_the_formula_and_liquidates(
    database: Database | None, side: Side, expected: float
) -> None:
    paper = exchange(database)
    paper.place_order(order("e", side, 0.5, leverage=10))
    (position,) = paper.exchange_positions()
    # long: (entry - margin/size) / (1 - mmr); short: (entry + margin/size) / (1 + mmr); margin = notional / 10
    assert position.margin == pytest.approx(0.5 * 40_000 / 10)
    assert position.liquidation_price == pytest.approx(expected)
    assert liquidation_price(40_000, 0.5 * side.sign, 2_000, 0.03) == pytest.approx(expected)
    balance = paper.account().balance
    away = expected * (0.999 if side is Side.BUY else 1.001)
    paper.on_price("BTC-PERP", away, NOW + timedelta(minutes=1))
    assert paper.positions() == []
    # the whole margin is gone: the loss up to the liquidation price plus the rest to the insurance fund
    assert paper.account().balance == pytest.approx(balance - 2_000)
    assert paper.ledger_total("liquidation") == pytest.approx(-(2_000 - abs(expected - 40_000) * 0.5))


def test_funding_is_paid_every_interval_of_the_market_clock(database: Database | None) -> None:
    paper = exchange(database)
    paper.place_order(order("e", Side.BUY, 0.5))
    paper.set_funding_rate(FundingRate("BTC-PERP", 0.0001, NOW))
    balance = paper.account().balance
    paper.on_price("BTC-PERP", 40_000.0, NOW + timedelta(minutes=59))
    assert paper.account().balance == balance
    paper.on_price("BTC-PERP", 40_000.0, NOW + timedelta(hours=3, minutes=1))  # 13:00, 14:00 and 15:00
    assert paper.account().balance == pytest.approx(balance - 3 * 0.0001 * 0.5 * 40_000)
    assert paper.ledger_total("funding") == pytest.approx(-6.0)


def test_insufficient_margin_is_rejected_and_changes_nothing(database: Database | None) -> None:
    paper = exchange(database)
    with pytest.raises(Rejected, match="insufficient margin"):
        paper.place_order(order("c1", Side.BUY, 1.0))  # 40k / 3 > 10k
    assert paper.account().balance == 10_000.0 and paper.positions() == []


def test_state_survives_a_restart(database: Database | None) -> None:
    if database is None:
        pytest.skip("a backtest's books live as long as its run")
    paper = exchange(database)
    paper.place_order(order("c1", Side.SELL, 0.1))
    paper.place_order(order("l1", Side.BUY, 0.05, order_type=OrderType.LIMIT, price=39_000.0))
    again = exchange(database)
    assert [p.quantity for p in again.positions()] == [-0.1]
    assert [o.client_id for o in again.open_orders()] == ["l1"]
    assert again.get_order("c1").filled_quantity == 0.1  # type: ignore[union-attr]
    assert again.get_order("unknown") is None
    assert again.cancel_order("l1").status is OrderStatus.CANCELED
    with pytest.raises(Rejected):
        again.cancel_order("l1")


def test_duplicate_client_id_and_no_price_and_bad_requests(database: Database | None) -> None:
    paper = exchange(database)
    paper.place_order(order("c1", Side.BUY, 0.01))
    with pytest.raises(Rejected, match="duplicate"):
        paper.place_order(order("c1", Side.BUY, 0.01))
    with pytest.raises(Temporary):
        paper.place_order(OrderRequest("c2", "ETH-PERP", Side.BUY, 0.01))
    with pytest.raises(ValueError, match="needs a positive price"):
        OrderRequest("c3", "BTC-PERP", Side.BUY, 0.01, order_type=OrderType.LIMIT)
    with pytest.raises(ValueError, match="trigger_price"):
        OrderRequest("c4", "BTC-PERP", Side.BUY, 0.01, order_type=OrderType.STOP_MARKET)


actions = st.lists(
    st.tuples(
        st.sampled_from(["market", "limit", "stop", "reduce", "price"]),
        st.sampled_from(list(Side)),
        st.floats(0.001, 0.2),
        st.floats(-0.03, 0.03),
    ),
    min_size=1,
    max_size=25,
)


def play(paper: PaperExchange, steps: list[tuple[str, Side, float, float]]) -> list[object]:
    """Run the steps on a fresh exchange; what each one gave (its result, or the rejection) and the books
    after it. Checks on the way that a reduce-only order never increases a position."""
    price, time = 40_000.0, NOW
    paper.on_price("BTC-PERP", price, time)
    paper.set_funding_rate(FundingRate("BTC-PERP", 0.0001, time))
    transcript: list[object] = []
    for index, (kind, side, qty, move) in enumerate(steps):
        before = sum(p.quantity for p in paper.positions())
        result: OrderResult | None = None
        try:
            if kind == "market":
                result = paper.place_order(OrderRequest(f"o{index}", "BTC-PERP", side, qty, leverage=5))
            elif kind == "limit":
                limit = price * (1 - side.sign * 0.005)
                result = paper.place_order(
                    OrderRequest(f"o{index}", "BTC-PERP", side, qty, OrderType.LIMIT, price=limit, leverage=5)
                )
            elif kind == "stop":
                trigger = price * (1 + side.sign * 0.01)
                stop = OrderRequest(
                    f"o{index}",
                    "BTC-PERP",
                    side,
                    qty,
                    OrderType.STOP_MARKET,
                    trigger_price=trigger,
                    leverage=5,
                )
                result = paper.place_order(stop)
            elif kind == "reduce":
                result = paper.place_order(OrderRequest(f"o{index}", "BTC-PERP", side, qty, reduce_only=True))
                after = sum(p.quantity for p in paper.positions())
                assert abs(after) <= abs(before) + 1e-12 and after * before >= -1e-12
            else:
                new = price * (1 + move)
                time += timedelta(minutes=37)
                paper.on_price(
                    "BTC-PERP", new, time, high=max(price, new) * 1.002, low=min(price, new) * 0.998
                )
                price = new
        except Rejected as exc:
            transcript.append(f"rejected: {exc}")
        if result is not None:
            fills = [(f.quantity, f.price, f.fee) for f in result.fills]
            transcript.append(
                (result.status, result.filled_quantity, result.average_price, fills, result.reason)
            )
        resting = [(o.client_id, o.status, o.filled_quantity) for o in paper.open_orders()]
        transcript.append(
            (paper.account(), paper.exchange_positions(), resting, paper.drain_changed_orders())
        )
    return transcript


def ledger(paper: PaperExchange) -> list[float]:
    return [paper.ledger_total(kind) for kind in ("fee", "pnl", "funding", "liquidation", None)]


# each example runs whole exchanges (databases included): no deadline, and a fresh database per example
EXCHANGE_RUNS = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def fresh_database(tmp_path_factory: pytest.TempPathFactory) -> Database:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('paper')}/p.db")
    db.migrate()
    return db


@settings(EXCHANGE_RUNS, max_examples=40)
@given(actions)
def test_no_money_is_created_or_destroyed(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, Side, float, float]]
) -> None:
    """Equity change == price PnL of the positions held - fees + funding - liquidation penalties, and a
    reduce-only order never increases a position."""
    db = fresh_database(tmp_path_factory)
    paper = PaperExchange(db, PaperConfig(slippage_bps=3.0))
    start = paper.account().equity
    play(paper, steps)
    account = paper.account()
    ledger = paper.ledger_total()  # fees (-), realised pnl, funding, liquidation penalties (-)
    assert account.balance == pytest.approx(start + ledger, abs=1e-6)
    assert account.equity == pytest.approx(account.balance + account.unrealized_pnl, abs=1e-9)


@settings(EXCHANGE_RUNS, max_examples=60)
@given(actions)
def test_memory_books_keep_exactly_the_books_of_the_database(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, Side, float, float]]
) -> None:
    """A backtest's exchange (books in memory) answers and books every step as paper trading's does (books in
    the database): the same results, fills, rejections, account, positions, resting orders and ledger."""
    db = fresh_database(tmp_path_factory)
    config = PaperConfig(slippage_bps=3.0)
    in_memory, in_database = PaperExchange(None, config), PaperExchange(db, config)
    assert play(in_memory, steps) == play(in_database, steps)
    # sums: SQLite from 3.43 adds with compensation, memory (like older SQLite) left to right
    assert ledger(in_memory) == pytest.approx(ledger(in_database), rel=1e-12, abs=1e-12)


def test_a_failed_transaction_leaves_memory_books_as_they_were() -> None:
    """Like a database rollback: an order that fails midway (here the fill cannot be written) changes no
    balance, position, resting order or ledger entry, and its id is free again."""
    paper = exchange(None)
    paper.place_order(order("l1", Side.BUY, 0.05, order_type=OrderType.LIMIT, price=39_000.0))
    paper.place_order(order("c1", Side.BUY, 0.02))
    before = (paper.account(), paper.exchange_positions(), paper.open_orders(), paper.ledger_total())
    books = paper._store
    assert isinstance(books, MemoryBooks)
    original = books.add_fill

    def broken(row: object) -> None:
        raise RuntimeError("disk full")

    books.add_fill = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        paper.place_order(order("c2", Side.BUY, 0.03))
    books.add_fill = original  # type: ignore[method-assign]
    assert (paper.account(), paper.exchange_positions(), paper.open_orders(), paper.ledger_total()) == before
    assert paper.get_order("c2") is None
    assert paper.place_order(order("c2", Side.BUY, 0.03)).status is OrderStatus.FILLED
