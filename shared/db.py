"""Database tables and sessions (SQLAlchemy 2).

SQLite (WAL mode) is the default; PostgreSQL when ``DATABASE_URL`` says so. One writing service per
table: ``signals`` is written by the webhook; everything else by the agent. A signal is pending while it
has no row in ``decisions``; ``decisions.signal_id`` is unique, so a signal is decided at most once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

# Columns widened after they first shipped (PostgreSQL enforces VARCHAR lengths; SQLite does not).
WIDENED = (("fills", "trade_id", 160), ("orders", "exchange_id", 160))


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always gives them back aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class SchemaVersion(Base):
    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)


class SignalRow(Base):
    """Written by: webhook (external alerts) and agent (internal signals, source != tradingview)."""

    __tablename__ = "signals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    source: Mapped[str] = mapped_column(String(40))
    symbol: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(10))
    price: Mapped[float | None] = mapped_column(Float)
    timeframe: Mapped[str | None] = mapped_column(String(10))
    strategy: Mapped[str | None] = mapped_column(String(120))
    confidence: Mapped[float | None] = mapped_column(Float)
    stop_loss: Mapped[float | None] = mapped_column(Float)
    take_profit: Mapped[float | None] = mapped_column(Float)
    alert_time: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DecisionRow(Base):
    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id"), unique=True)
    analyst: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    rationale: Mapped[str] = mapped_column(Text)
    factors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stop_loss: Mapped[float | None] = mapped_column(Float)
    take_profit: Mapped[float | None] = mapped_column(Float)
    risk_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    risk_reason: Mapped[str] = mapped_column(Text, default="")
    quantity: Mapped[float] = mapped_column(Float, default=0.0)
    # how risk sized or vetoed it: every rule's size, the binding rule, the effective stop, the checks
    risk: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    # an AI analyst's proposal beyond action/stop/target: entry type and price, targets, leverage, horizon
    proposal: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderRow(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    signal_id: Mapped[int | None] = mapped_column(ForeignKey("signals.id"), index=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"))
    symbol: Mapped[str] = mapped_column(String(40))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[float] = mapped_column(Float)
    limit_price: Mapped[float | None] = mapped_column(Float)
    trigger_price: Mapped[float | None] = mapped_column(Float)
    parent_client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(20), default="entry", server_default="entry")
    # the exit reason a trade closed by this order gets (stop_loss, trailing_stop, time_exit, ...)
    exit_kind: Mapped[str] = mapped_column(String(30), default="", server_default="")
    price: Mapped[float | None] = mapped_column(Float)  # average fill price
    filled_quantity: Mapped[float] = mapped_column(Float, default=0.0)
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), index=True)
    not_found: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    exchange_id: Mapped[str | None] = mapped_column(String(160))
    reason: Mapped[str | None] = mapped_column(Text)
    # an exchange that signs orders ahead (Bluefin Pro): when it was signed and its signed expiry, recorded
    # before it is sent; an order the exchange never saw is settled as never placed once that has passed
    signed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlgoRow(Base):
    """A TWAP or iceberg execution: the parent of its slice orders (orders.parent_client_id)."""

    __tablename__ = "algos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # twap | iceberg
    symbol: Mapped[str] = mapped_column(String(40))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[float] = mapped_column(Float)
    slices: Mapped[int] = mapped_column(Integer, default=1)
    interval_s: Mapped[float] = mapped_column(Float, default=0.0)
    visible_quantity: Mapped[float | None] = mapped_column(Float)
    limit_price: Mapped[float | None] = mapped_column(Float)
    slices_sent: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), index=True)  # RUNNING | DONE | CANCELED
    reason: Mapped[str] = mapped_column(Text, default="")
    next_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AiCallRow(Base):
    """The audit of every AI analyst call (written by the agent)."""

    __tablename__ = "ai_calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(80))
    prompt_version: Mapped[str] = mapped_column(String(40))
    prompt_hash: Mapped[str] = mapped_column(String(64), index=True)
    signal_key: Mapped[str] = mapped_column(String(160), index=True)
    prompt: Mapped[str] = mapped_column(Text)
    raw_output: Mapped[str] = mapped_column(Text, default="")
    parsed: Mapped[dict[str, Any]] = mapped_column(default=dict)
    validation_errors: Mapped[str] = mapped_column(Text, default="[]")
    error: Mapped[str] = mapped_column(Text, default="")
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class PositionReviewRow(Base):
    """An AI analyst's review of an open position (agent.engine.reviews): why it was asked, the answer, what
    the risk rules made of it, and the AI call it cost."""

    __tablename__ = "position_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(40), index=True)
    side: Mapped[str] = mapped_column(String(4))
    entry_client_id: Mapped[str] = mapped_column(String(64), index=True)  # the position's entry order
    decision_id: Mapped[int | None] = mapped_column(Integer)  # the entry's decision
    analyst: Mapped[str] = mapped_column(String(40))
    triggers: Mapped[list[str]] = mapped_column(JSON, default=list)
    action: Mapped[str] = mapped_column(String(12))  # hold | close | reduce | move_stop | "" (no answer)
    fraction: Mapped[float | None] = mapped_column(Float)
    new_stop: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")  # the analyst's
    # done (acted) | held | refused (a risk rule) | invalid (bad answer) | failed (no answer) | budget
    outcome: Mapped[str] = mapped_column(String(12))
    rule: Mapped[str] = mapped_column(String(40), default="")  # the refusing rule
    detail: Mapped[str] = mapped_column(Text, default="")  # the refusal, the problems, the order placed
    client_id: Mapped[str] = mapped_column(String(64), default="")  # the close/reduce order placed
    ai_call_id: Mapped[int | None] = mapped_column(Integer)  # ai_calls.id
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_hash: Mapped[str] = mapped_column(String(64), default="")
    market_time: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AiCacheRow(Base):
    """Recorded AI answers by (provider, model, prompt hash): AI_CACHE=replay answers from here."""

    __tablename__ = "ai_cache"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    answer: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FillRow(Base):
    __tablename__ = "fills"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trade_id: Mapped[str] = mapped_column(String(160), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    symbol: Mapped[str] = mapped_column(String(40))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)
    time: Mapped[datetime]


class PositionRow(Base):
    __tablename__ = "positions"
    symbol: Mapped[str] = mapped_column(String(40), primary_key=True)
    quantity: Mapped[float] = mapped_column(Float, default=0.0)  # signed
    entry_price: Mapped[float] = mapped_column(Float, default=0.0)
    realized_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    fees: Mapped[float] = mapped_column(Float, default=0.0)
    opened_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # the open position's trade so far (agent.execution.booking): funding paid or received while it is open,
    # and its fills (legs), each with its fee, price PnL and forfeited margin
    funding: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    legs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")


class TradeRow(Base):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(40))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[float] = mapped_column(Float)
    entry_price: Mapped[float] = mapped_column(Float)
    exit_price: Mapped[float] = mapped_column(Float)
    pnl: Mapped[float] = mapped_column(Float)
    fees: Mapped[float] = mapped_column(Float)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime]
    exit_reason: Mapped[str] = mapped_column(String(80))
    close_client_id: Mapped[str] = mapped_column(String(64))
    exit_detail: Mapped[str] = mapped_column(Text, default="", server_default="")
    # the entry's context, for the feedback loop (win rate and R by source and regime) and analytics
    signal_source: Mapped[str] = mapped_column(String(60), default="", server_default="")
    analyst: Mapped[str] = mapped_column(String(40), default="", server_default="")
    regime: Mapped[str] = mapped_column(String(30), default="", server_default="")
    initial_risk: Mapped[float | None] = mapped_column(Float)  # USD lost at the initial stop
    r_multiple: Mapped[float | None] = mapped_column(Float)  # pnl / initial_risk
    # one trade per position, from open to flat: pnl = price PnL - fees + funding - forfeited (the margin a
    # liquidation gave to the insurance fund); legs: every fill of the position (agent.execution.booking)
    funding: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    forfeited: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    legs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")


class ShadowTradeRow(Base):
    """A paper trade of one analyst's shadow book (``agent.arena``): what a signal would have made had that
    analyst decided it, sized by the same risk gate; never an order. OPEN until a stop, target, close or
    reversal closes it on a later candle."""

    __tablename__ = "shadow_trades"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    analyst: Mapped[str] = mapped_column(String(40), index=True)
    signal_id: Mapped[int] = mapped_column(Integer, index=True)  # the signal that opened it
    symbol: Mapped[str] = mapped_column(String(40))
    side: Mapped[str] = mapped_column(String(4))  # BUY = long, SELL = short
    quantity: Mapped[float] = mapped_column(Float)
    entry_price: Mapped[float] = mapped_column(Float)
    opened_at: Mapped[datetime]
    stop_price: Mapped[float | None] = mapped_column(Float)
    take_profit: Mapped[float | None] = mapped_column(Float)
    initial_risk: Mapped[float | None] = mapped_column(Float)  # USD lost at the stop
    taker_fee: Mapped[float] = mapped_column(Float)  # the market's, paid on both fills
    slippage_bps: Mapped[float] = mapped_column(Float)  # paid by the entry and by market exits
    status: Mapped[str] = mapped_column(String(8), index=True)  # OPEN | CLOSED
    exit_price: Mapped[float | None] = mapped_column(Float)
    closed_at: Mapped[datetime | None]
    exit_reason: Mapped[str] = mapped_column(String(40), default="")
    close_signal_id: Mapped[int | None] = mapped_column(Integer)  # the signal that closed it, if one did
    fees: Mapped[float] = mapped_column(Float, default=0.0)
    pnl: Mapped[float] = mapped_column(Float, default=0.0)  # price PnL - both taker fees (when closed)


class PositionPlanRow(Base):
    """How the agent manages an open position (written by the agent's position manager): the entry's
    context, its initial risk, the protective stop as it moves, partial take-profits taken, the level it
    depended on."""

    __tablename__ = "position_plans"
    symbol: Mapped[str] = mapped_column(String(40), primary_key=True)
    side: Mapped[str] = mapped_column(String(4))
    entry_client_id: Mapped[str] = mapped_column(String(64))
    signal_id: Mapped[int | None] = mapped_column(Integer)
    decision_id: Mapped[int | None] = mapped_column(Integer)
    signal_source: Mapped[str] = mapped_column(String(60), default="")
    analyst: Mapped[str] = mapped_column(String(40), default="")
    regime: Mapped[str] = mapped_column(String(30), default="")
    entry_price: Mapped[float] = mapped_column(Float)
    initial_quantity: Mapped[float] = mapped_column(Float)
    initial_stop: Mapped[float | None] = mapped_column(Float)
    risk_per_unit: Mapped[float] = mapped_column(Float, default=0.0)
    stop_price: Mapped[float | None] = mapped_column(Float)
    stop_kind: Mapped[str] = mapped_column(String(20), default="stop_loss")
    take_profit: Mapped[float | None] = mapped_column(Float)
    partials_done: Mapped[int] = mapped_column(Integer, default=0)
    trailing_active: Mapped[bool] = mapped_column(Boolean, default=False)
    best_price: Mapped[float] = mapped_column(Float)
    level_price: Mapped[float | None] = mapped_column(Float)
    level_kind: Mapped[str] = mapped_column(String(12), default="")
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EventRow(Base):
    """The journal: every event the agent emits, in order."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaperAccountRow(Base):
    """The paper exchange's own books (written only by PaperExchange inside the agent)."""

    __tablename__ = "paper_accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    balance: Mapped[float] = mapped_column(Float)
    fees_paid: Mapped[float] = mapped_column(Float, default=0.0)


class PaperPositionRow(Base):
    __tablename__ = "paper_positions"
    symbol: Mapped[str] = mapped_column(String(40), primary_key=True)
    quantity: Mapped[float] = mapped_column(Float, default=0.0)
    entry_price: Mapped[float] = mapped_column(Float, default=0.0)
    leverage: Mapped[float] = mapped_column(Float, default=3.0, server_default="3")
    margin: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class PaperOrderRow(Base):
    __tablename__ = "paper_orders"
    exchange_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    symbol: Mapped[str] = mapped_column(String(40))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(20), default="MARKET", server_default="MARKET")
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float | None] = mapped_column(Float)
    trigger_price: Mapped[float | None] = mapped_column(Float)
    time_in_force: Mapped[str] = mapped_column(String(4), default="GTT", server_default="GTT")
    post_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    leverage: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    triggered: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    filled_quantity: Mapped[float] = mapped_column(Float)
    fill_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    average_price: Mapped[float | None] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaperFillRow(Base):
    __tablename__ = "paper_fills"
    trade_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    exchange_id: Mapped[str] = mapped_column(String(80), index=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    symbol: Mapped[str] = mapped_column(String(40))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)
    liquidity: Mapped[str] = mapped_column(String(5))  # maker | taker
    time: Mapped[datetime]


class PaperLedgerRow(Base):
    """Every cash movement of the paper account: fee, realised PnL, funding, liquidation penalty."""

    __tablename__ = "paper_ledger"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    symbol: Mapped[str] = mapped_column(String(40))
    amount: Mapped[float] = mapped_column(Float)  # signed: + credits the balance
    time: Mapped[datetime]
    reference: Mapped[str] = mapped_column(String(80), default="")


class FundingRow(Base):
    """Written by: agent. Funding an exchange settled on our positions (Bluefin Pro's funding history)."""

    __tablename__ = "funding_payments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    symbol: Mapped[str] = mapped_column(String(40), index=True)
    amount: Mapped[float] = mapped_column(Float)  # to the account: negative = paid
    rate: Mapped[float] = mapped_column(Float)
    side: Mapped[str] = mapped_column(String(10), default="")
    time: Mapped[datetime] = mapped_column(index=True)


class StateRow(Base):
    """Small persisted engine state (trading state, kill switch, breaker, feed cursor)."""

    __tablename__ = "engine_state"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def normalise_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


SQLITE_BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another's transaction before giving up


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return pragmas


class Database:
    """An engine plus a session factory; ``migrate()`` creates or upgrades the schema.

    SQLite: every pooled connection (reused, one per thread at a time) runs in WAL mode with
    synchronous=NORMAL and waits ``busy_timeout_ms`` for another writer's transaction."""

    def __init__(self, url: str, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            path = self.url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas(busy_timeout_ms))
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> str:
        """Bring the schema to the head revision (alembic, under a lock: see ``shared.schema``); the
        revision. Used by ``bluefinai db upgrade`` and by private databases (backtests, tests); services
        only check the revision at start."""
        from shared.schema import upgrade

        return upgrade(self)[1]

    def legacy_catch_up(self, connection: Connection) -> None:
        """A database from before alembic: create missing tables, add missing columns (each had a server
        default), widen the columns that were widened. What ``migrate`` did until schema version 5."""
        Base.metadata.create_all(connection)
        inspector = inspect(connection)
        for table in Base.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=connection.dialect)
                default = column.server_default.arg if column.server_default is not None else None  # type: ignore[attr-defined]
                clause = f" DEFAULT '{default}'" if default is not None else ""
                connection.execute(
                    text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{clause}')
                )
        if not self.is_sqlite:
            for table_name, column_name, length in WIDENED:
                connection.execute(
                    text(f"ALTER TABLE {table_name} ALTER COLUMN {column_name} TYPE VARCHAR({length})")
                )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any exception."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


_LATER = "bluefinai_insert_later"
RowT = TypeVar("RowT", bound=Base)


def insert_later(session: Session, model: type[Base], values: dict[str, Any]) -> None:
    """Insert a row that nothing in this transaction reads back (journal events, ledger entries), together
    with the others of its table, in one statement just before the transaction commits. An ORM insert per
    row costs as much as the rest of a typical transaction."""
    pending: dict[type[Base], list[dict[str, Any]]] | None = session.info.get(_LATER)
    if pending is None:
        pending = session.info[_LATER] = {}
        event.listen(session, "before_commit", _insert_pending, once=True)
    pending.setdefault(model, []).append(values)


def _insert_pending(session: Session) -> None:
    connection = session.connection()  # Core, not the ORM's bulk insert: nothing maps these rows back
    for model, rows in session.info.pop(_LATER, {}).items():
        connection.execute(model.__table__.insert(), rows)


def with_defaults(row: RowT) -> RowT:
    """A new row as the database would store it: columns never set take their defaults (no database); a
    column set to None stays None, as the database stores NULL then."""
    given = vars(row)
    for column in row.__table__.columns:
        default = column.default
        if default is None or column.key in given:
            continue
        if default.is_scalar:
            setattr(row, column.key, default.arg)
        elif default.is_callable:
            setattr(row, column.key, default.arg(None))
    return row


def row_values(row: Base) -> dict[str, Any]:
    """Every column of a row, by key (a copy to restore it from, or the values to insert it with)."""
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def get_state(session: Session, key: str, default: Any = None) -> Any:
    row = session.get(StateRow, key)
    return json.loads(row.value) if row else default


def set_state(session: Session, key: str, value: Any) -> None:
    session.merge(StateRow(key=key, value=json.dumps(value)))
