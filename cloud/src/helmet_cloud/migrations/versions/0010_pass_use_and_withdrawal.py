"""pass use and withdrawal: a pass is good once, fleet-wide; the borrow command names its pass

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The event kinds that say a locker honoured a pass (helmet_cloud.domain.pass_refusals.USE_KINDS).
USE_KINDS = "('helmet.borrowed', 'unlock.timeout', 'borrow.cancelled')"


def upgrade() -> None:
    with op.batch_alter_table("issuedpass", schema=None) as batch_op:
        batch_op.add_column(sa.Column("used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("used_locker_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("used_cmd_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_issuedpass_expires_at"), ["expires_at"], unique=False)
    with op.batch_alter_table("lockercommand", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pass_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))
    # Passes used before this revision: their first use, from the events already stored.
    op.execute(
        sa.text(
            f"""
            UPDATE issuedpass SET
              used_at = (SELECT r.ts FROM rawevent r WHERE r.pass_id = issuedpass.id AND r.kind IN {USE_KINDS}
                         ORDER BY r.ts, r.locker_id, r.seq LIMIT 1),
              used_locker_id = (SELECT r.locker_id FROM rawevent r WHERE r.pass_id = issuedpass.id
                                AND r.kind IN {USE_KINDS} ORDER BY r.ts, r.locker_id, r.seq LIMIT 1)
            WHERE EXISTS (SELECT 1 FROM rawevent r WHERE r.pass_id = issuedpass.id AND r.kind IN {USE_KINDS})
            """  # noqa: S608 (constants only)
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("lockercommand", schema=None) as batch_op:
        batch_op.drop_column("pass_id")
    with op.batch_alter_table("issuedpass", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issuedpass_expires_at"))
        batch_op.drop_column("withdrawn_by")
        batch_op.drop_column("withdrawn_at")
        batch_op.drop_column("used_cmd_id")
        batch_op.drop_column("used_locker_id")
        batch_op.drop_column("used_at")
