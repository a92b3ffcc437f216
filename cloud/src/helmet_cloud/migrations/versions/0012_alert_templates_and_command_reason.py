"""alert templates and command reasons: alerts keep their message as a catalogue template and its fields, so
pages show them in the reader's language; a command sent by hand keeps why (remote open asks for a reason)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows written before keep template and params NULL: pages show their stored English message.
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column("params", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    with op.batch_alter_table("lockercommand", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lockercommand", schema=None) as batch_op:
        batch_op.drop_column("reason")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("params")
        batch_op.drop_column("template")
