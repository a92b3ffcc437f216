"""town map tiles: each town's tile server for the staff map and the credit it asks for (null: the setting)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 14:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing towns keep what they had: null, the deployment's HELMET_MAP_TILE_URL and HELMET_MAP_ATTRIBUTION.
    with op.batch_alter_table("town", schema=None) as batch_op:
        batch_op.add_column(sa.Column("map_tile_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column("map_attribution", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("town", schema=None) as batch_op:
        batch_op.drop_column("map_attribution")
        batch_op.drop_column("map_tile_url")
