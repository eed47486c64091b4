"""shadow trades: every analyst's paper book of the arena (agent.arena)

Revision ID: 0003
Revises: 0002
Created: 2026-12-02 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_trades",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("analyst", sa.String(length=40), nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("opened_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.Column("initial_risk", sa.Float(), nullable=True),
        sa.Column("taker_fee", sa.Float(), nullable=False),
        sa.Column("slippage_bps", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("exit_price", sa.Float(), nullable=True),
        sa.Column("closed_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("exit_reason", sa.String(length=40), nullable=False),
        sa.Column("close_signal_id", sa.Integer(), nullable=True),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("pnl", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("shadow_trades", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shadow_trades_analyst"), ["analyst"], unique=False)
        batch_op.create_index(batch_op.f("ix_shadow_trades_signal_id"), ["signal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_shadow_trades_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shadow_trades", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shadow_trades_status"))
        batch_op.drop_index(batch_op.f("ix_shadow_trades_signal_id"))
        batch_op.drop_index(batch_op.f("ix_shadow_trades_analyst"))
    op.drop_table("shadow_trades")
