"""locker clock offsets: events stored at corrected time

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 12:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("locker", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_offset_ms", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("clock_offset_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("clock_offset_boot", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    with op.batch_alter_table("rawevent", schema=None) as batch_op:
        # Events stored before the correction existed keep their locker's time: an offset of 0.
        batch_op.add_column(sa.Column("clock_offset_ms", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("rawevent", schema=None) as batch_op:
        batch_op.drop_column("clock_offset_ms")
    with op.batch_alter_table("locker", schema=None) as batch_op:
        batch_op.drop_column("clock_offset_boot")
        batch_op.drop_column("clock_offset_at")
        batch_op.drop_column("clock_offset_ms")
