"""sign-in limits per phone: tries at a code and codes sent, each counted in a window

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("onetimecode", schema=None) as batch_op:
        batch_op.alter_column("attempts", new_column_name="tries", existing_type=sa.Integer(), existing_nullable=False)
        batch_op.add_column(sa.Column("tries_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sent", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("sent_since", sa.DateTime(timezone=True), nullable=True))
    # Codes out now: their tries and their one code sent count in a window that starts now.
    now = sa.bindparam("now", datetime.now(UTC), type_=sa.DateTime(timezone=True))
    op.get_bind().execute(sa.text("UPDATE onetimecode SET tries_since = :now, sent_since = :now").bindparams(now))
    with op.batch_alter_table("onetimecode", schema=None) as batch_op:
        batch_op.alter_column("tries_since", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column("sent", existing_type=sa.Integer(), server_default=None)
        batch_op.alter_column("sent_since", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("onetimecode", schema=None) as batch_op:
        batch_op.drop_column("sent_since")
        batch_op.drop_column("sent")
        batch_op.drop_column("tries_since")
        batch_op.alter_column("tries", new_column_name="attempts", existing_type=sa.Integer(), existing_nullable=False)
