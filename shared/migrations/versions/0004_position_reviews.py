"""position reviews: an AI analyst's review of an open position and what the risk rules made of it

Revision ID: 0004
Revises: 0003
Created: 2026-12-02 13:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "position_reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("entry_client_id", sa.String(length=64), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("analyst", sa.String(length=40), nullable=False),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("fraction", sa.Float(), nullable=True),
        sa.Column("new_stop", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("ai_call_id", sa.Integer(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("prompt_hash", sa.String(length=64), nullable=False),
        sa.Column("market_time", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("position_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_position_reviews_entry_client_id"), ["entry_client_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_position_reviews_symbol"), ["symbol"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("position_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_position_reviews_symbol"))
        batch_op.drop_index(batch_op.f("ix_position_reviews_entry_client_id"))
    op.drop_table("position_reviews")
