"""event reason column: an event's reason stored at ingest, not re-parsed from its payload

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 15:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rawevent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
    # Events stored before the column existed: their reason, from the payload they were stored with. Parsed
    # here rather than with the database's JSON functions, which differ and refuse a "\u0000" in the text.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT event_id, payload FROM rawevent WHERE payload LIKE '%\"reason\"%'"))
    updates = []
    for event_id, payload in rows:
        try:
            reason = json.loads(payload).get("reason")
        except (ValueError, AttributeError):
            continue
        if isinstance(reason, str):
            updates.append({"id": event_id, "reason": reason[:128].replace("\x00", "\ufffd")})
    for i in range(0, len(updates), 1000):
        conn.execute(sa.text("UPDATE rawevent SET reason = :reason WHERE event_id = :id"), updates[i : i + 1000])


def downgrade() -> None:
    with op.batch_alter_table("rawevent", schema=None) as batch_op:
        batch_op.drop_column("reason")
