"""trade accounting: one trade per position with its funding, forfeited margin and fills (legs)

Revision ID: 0002
Revises: 0001
Created: 2026-12-02 00:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("positions", sa.Column("funding", sa.Float(), server_default="0", nullable=False))
    op.add_column("positions", sa.Column("legs", sa.JSON(), server_default="[]", nullable=False))
    op.add_column("trades", sa.Column("funding", sa.Float(), server_default="0", nullable=False))
    op.add_column("trades", sa.Column("forfeited", sa.Float(), server_default="0", nullable=False))
    op.add_column("trades", sa.Column("legs", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.drop_column("legs")
        batch_op.drop_column("forfeited")
        batch_op.drop_column("funding")
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_column("legs")
        batch_op.drop_column("funding")
