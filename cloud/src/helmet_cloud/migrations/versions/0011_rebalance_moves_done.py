"""rebalancing moves done: who moved how many helmets from which station to which, in which round

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rebalance_move",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_day", sa.Date(), nullable=False),
        sa.Column("source_station_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("target_station_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.Column("advised", sa.Integer(), nullable=True),
        sa.Column("done_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["source_station_id"], ["station.id"]),
        sa.ForeignKeyConstraint(["target_station_id"], ["station.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_day", "source_station_id", "target_station_id", name="uq_rebalance_move_round"),
    )
    with op.batch_alter_table("rebalance_move", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rebalance_move_round_day"), ["round_day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rebalance_move", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rebalance_move_round_day"))
    op.drop_table("rebalance_move")
