"""enrolment codes and the helmet registry

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 12:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enrolmentcode",
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("locker_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_from", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["locker_id"], ["locker.id"]),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    with op.batch_alter_table("enrolmentcode", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrolmentcode_locker_id"), ["locker_id"], unique=False)

    # Helmets already seen in events stay unregistered (registered_at NULL) until someone registers them.
    with op.batch_alter_table("helmet", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("registered_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("retired_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("retired_reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.create_index(batch_op.f("ix_helmet_retired_at"), ["retired_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("helmet", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_helmet_retired_at"))
        batch_op.drop_column("retired_reason")
        batch_op.drop_column("retired_by")
        batch_op.drop_column("retired_at")
        batch_op.drop_column("registered_by")
        batch_op.drop_column("registered_at")

    with op.batch_alter_table("enrolmentcode", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolmentcode_locker_id"))

    op.drop_table("enrolmentcode")
