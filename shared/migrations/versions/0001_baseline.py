"""baseline: the schema as of schema version 5

Revision ID: 0001
Revises: (none: the first)
Created: 2026-12-02 00:05:26.082583
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_cache",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "ai_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=80), nullable=False),
        sa.Column("prompt_version", sa.String(length=40), nullable=False),
        sa.Column("prompt_hash", sa.String(length=64), nullable=False),
        sa.Column("signal_key", sa.String(length=160), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("raw_output", sa.Text(), nullable=False),
        sa.Column("parsed", sa.JSON(), nullable=False),
        sa.Column("validation_errors", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ai_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_calls_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ai_calls_prompt_hash"), ["prompt_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_ai_calls_signal_key"), ["signal_key"], unique=False)

    op.create_table(
        "algos",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("slices", sa.Integer(), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("visible_quantity", sa.Float(), nullable=True),
        sa.Column("limit_price", sa.Float(), nullable=True),
        sa.Column("slices_sent", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("next_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
    )
    with op.batch_alter_table("algos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_algos_status"), ["status"], unique=False)

    op.create_table(
        "engine_state",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_type"), ["type"], unique=False)

    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trade_id", sa.String(length=160), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("time", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("trade_id"),
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fills_client_id"), ["client_id"], unique=False)

    op.create_table(
        "funding_payments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("time", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("funding_payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_funding_payments_symbol"), ["symbol"], unique=False)
        batch_op.create_index(batch_op.f("ix_funding_payments_time"), ["time"], unique=False)

    op.create_table(
        "paper_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("balance", sa.Float(), nullable=False),
        sa.Column("fees_paid", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "paper_fills",
        sa.Column("trade_id", sa.String(length=80), nullable=False),
        sa.Column("exchange_id", sa.String(length=80), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("liquidity", sa.String(length=5), nullable=False),
        sa.Column("time", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("trade_id"),
    )
    with op.batch_alter_table("paper_fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_fills_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_paper_fills_exchange_id"), ["exchange_id"], unique=False)

    op.create_table(
        "paper_ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("time", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reference", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("paper_ledger", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_ledger_kind"), ["kind"], unique=False)

    op.create_table(
        "paper_orders",
        sa.Column("exchange_id", sa.String(length=80), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("order_type", sa.String(length=20), server_default="MARKET", nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("trigger_price", sa.Float(), nullable=True),
        sa.Column("time_in_force", sa.String(length=4), server_default="GTT", nullable=False),
        sa.Column("post_only", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("reduce_only", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("leverage", sa.Float(), server_default="1", nullable=False),
        sa.Column("triggered", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("filled_quantity", sa.Float(), nullable=False),
        sa.Column("fill_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("average_price", sa.Float(), nullable=True),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("exchange_id"),
        sa.UniqueConstraint("client_id"),
    )
    with op.batch_alter_table("paper_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_orders_status"), ["status"], unique=False)

    op.create_table(
        "paper_positions",
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("leverage", sa.Float(), server_default="3", nullable=False),
        sa.Column("margin", sa.Float(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("symbol"),
    )
    op.create_table(
        "position_plans",
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("entry_client_id", sa.String(length=64), nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("signal_source", sa.String(length=60), nullable=False),
        sa.Column("analyst", sa.String(length=40), nullable=False),
        sa.Column("regime", sa.String(length=30), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("initial_quantity", sa.Float(), nullable=False),
        sa.Column("initial_stop", sa.Float(), nullable=True),
        sa.Column("risk_per_unit", sa.Float(), nullable=False),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.Column("stop_kind", sa.String(length=20), nullable=False),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.Column("partials_done", sa.Integer(), nullable=False),
        sa.Column("trailing_active", sa.Boolean(), nullable=False),
        sa.Column("best_price", sa.Float(), nullable=False),
        sa.Column("level_price", sa.Float(), nullable=True),
        sa.Column("level_kind", sa.String(length=12), nullable=False),
        sa.Column("opened_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("symbol"),
    )
    op.create_table(
        "positions",
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("realized_pnl", sa.Float(), nullable=False),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("opened_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("symbol"),
    )
    op.create_table(
        "schema_version",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("applied_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("timeframe", sa.String(length=10), nullable=True),
        sa.Column("strategy", sa.String(length=120), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("stop_loss", sa.Float(), nullable=True),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.Column("alert_time", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signals_received_at"), ["received_at"], unique=False)

    op.create_table(
        "trades",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("exit_price", sa.Float(), nullable=False),
        sa.Column("pnl", sa.Float(), nullable=False),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("opened_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("exit_reason", sa.String(length=80), nullable=False),
        sa.Column("close_client_id", sa.String(length=64), nullable=False),
        sa.Column("exit_detail", sa.Text(), server_default="", nullable=False),
        sa.Column("signal_source", sa.String(length=60), server_default="", nullable=False),
        sa.Column("analyst", sa.String(length=40), server_default="", nullable=False),
        sa.Column("regime", sa.String(length=30), server_default="", nullable=False),
        sa.Column("initial_risk", sa.Float(), nullable=True),
        sa.Column("r_multiple", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=False),
        sa.Column("analyst", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("stop_loss", sa.Float(), nullable=True),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.Column("risk_approved", sa.Boolean(), nullable=False),
        sa.Column("risk_reason", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("risk", sa.JSON(), server_default="{}", nullable=False),
        sa.Column("proposal", sa.JSON(), server_default="{}", nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_id"],
            ["signals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("signal_id"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("order_type", sa.String(length=20), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("limit_price", sa.Float(), nullable=True),
        sa.Column("trigger_price", sa.Float(), nullable=True),
        sa.Column("parent_client_id", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=20), server_default="entry", nullable=False),
        sa.Column("exit_kind", sa.String(length=30), server_default="", nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("filled_quantity", sa.Float(), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("not_found", sa.Integer(), server_default="0", nullable=False),
        sa.Column("exchange_id", sa.String(length=160), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("signed_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["signal_id"],
            ["signals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_parent_client_id"), ["parent_client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_signal_id"), ["signal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_status"))
        batch_op.drop_index(batch_op.f("ix_orders_signal_id"))
        batch_op.drop_index(batch_op.f("ix_orders_parent_client_id"))

    op.drop_table("orders")
    op.drop_table("decisions")
    op.drop_table("trades")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signals_received_at"))

    op.drop_table("signals")
    op.drop_table("schema_version")
    op.drop_table("positions")
    op.drop_table("position_plans")
    op.drop_table("paper_positions")
    with op.batch_alter_table("paper_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_orders_status"))

    op.drop_table("paper_orders")
    with op.batch_alter_table("paper_ledger", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_ledger_kind"))

    op.drop_table("paper_ledger")
    with op.batch_alter_table("paper_fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_fills_exchange_id"))
        batch_op.drop_index(batch_op.f("ix_paper_fills_client_id"))

    op.drop_table("paper_fills")
    op.drop_table("paper_accounts")
    with op.batch_alter_table("funding_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funding_payments_time"))
        batch_op.drop_index(batch_op.f("ix_funding_payments_symbol"))

    op.drop_table("funding_payments")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_client_id"))

    op.drop_table("fills")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_type"))

    op.drop_table("events")
    op.drop_table("engine_state")
    with op.batch_alter_table("algos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_algos_status"))

    op.drop_table("algos")
    with op.batch_alter_table("ai_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_calls_signal_key"))
        batch_op.drop_index(batch_op.f("ix_ai_calls_prompt_hash"))
        batch_op.drop_index(batch_op.f("ix_ai_calls_created_at"))

    op.drop_table("ai_calls")
    op.drop_table("ai_cache")
