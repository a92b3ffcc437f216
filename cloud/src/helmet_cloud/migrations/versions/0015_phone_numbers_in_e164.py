"""phone numbers in E.164: each town's region for numbers typed without a country code; residents' and sign-in
limits' numbers normalised, and accounts that were one number typed two ways merged into the oldest

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 14:45:00

``0780000005`` and ``+41780000005`` were two accounts. Each resident's number is read with the deployment's
region (``HELMET_DEFAULT_PHONE_REGION``, else CH; ``migrate(url, phone_region=...)`` passes the setting) and
stored in E.164. Accounts that come out with one number are merged into the oldest: the others' loans, passes,
sign-in tokens, commands, events, helmets held and alerts are repointed to it, the merged ids are kept in
``merged_resident`` (ingest counts a late event from a pass issued to one for the survivor), and the audit log
gets one ``resident.merge`` entry per account merged (its earlier entries stay as written). Sign-in limit rows
of one number are added together (the stricter). A number the library cannot read is left as it is, and logged.
The downgrade drops the new column and table; the numbers stay in E.164 and merged accounts stay merged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import context, op

from helmet_cloud.domain.phones import PhoneRefusedError, masked, phone_number

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("helmet_cloud.migrations.0015")
ACTOR = "migration:0015"

# Columns naming a resident by id: (table, column, extra condition).
RESIDENT_COLUMNS = [
    ("loan", "resident_id", ""),
    ("issuedpass", "holder_id", " AND role = 'resident'"),
    ("apitoken", "subject", " AND role = 'resident'"),
    ("lockercommand", "requested_by", ""),
    ("rawevent", "resident_id", ""),
    ("helmet", "holder_id", ""),
]


def _at(sql: str) -> sa.TextClause:
    """``sql`` with its ``:at`` bound as a timestamp, stored as the models' UtcDateTime stores it."""
    return sa.text(sql).bindparams(sa.bindparam("at", type_=sa.DateTime(timezone=True)))


def _region() -> str:
    return str(context.config.attributes.get("phone_region") or os.environ.get("HELMET_DEFAULT_PHONE_REGION", "CH"))


def _e164(phone: str, region: str, what: str) -> str | None:
    try:
        return phone_number(phone, region)
    except PhoneRefusedError as exc:
        log.warning("%s %s left as it is: %s in %s", what, masked(phone), exc.reason, region)
        return None


def _merge_residents(conn: sa.Connection, region: str, now: datetime) -> None:
    rows = conn.execute(sa.text("SELECT id, phone, created_at FROM resident ORDER BY created_at, id")).all()
    groups: dict[str, list[tuple[str, str]]] = {}
    for rid, phone, _created in rows:
        number = _e164(phone, region, f"resident {rid}'s number")
        if number is not None:
            groups.setdefault(number, []).append((rid, phone))
    for number, accounts in groups.items():
        (keep, _), merged = accounts[0], accounts[1:]
        for rid, phone in merged:
            for table, column, extra in RESIDENT_COLUMNS:
                conn.execute(
                    sa.text(f"UPDATE {table} SET {column} = :keep WHERE {column} = :old{extra}"),  # noqa: S608
                    {"keep": keep, "old": rid},
                )
            _repoint_alerts(conn, rid, keep, now)
            conn.execute(
                _at("INSERT INTO merged_resident (id, resident_id, phone, merged_at) VALUES (:id, :keep, :p, :at)"),
                {"id": rid, "keep": keep, "p": phone, "at": now},
            )
            conn.execute(
                _at(
                    "INSERT INTO audit_log (at, actor, role, action, subject_type, subject_id, detail) "
                    "VALUES (:at, :actor, NULL, 'resident.merge', 'resident', :keep, :detail)"
                ),
                {"at": now, "actor": ACTOR, "keep": keep, "detail": json.dumps({"merged": rid, "into": keep})},
            )
            conn.execute(sa.text("DELETE FROM resident WHERE id = :old"), {"old": rid})
            log.warning("resident %s merged into %s: one number, %s", rid, keep, masked(number))
        conn.execute(sa.text("UPDATE resident SET phone = :p WHERE id = :keep"), {"p": number, "keep": keep})


def _repoint_alerts(conn: sa.Connection, old: str, keep: str, now: datetime) -> None:
    """The merged account's alerts, the survivor's now; an open one the survivor also has (of its kind) is resolved,
    the survivor's standing for both."""
    alerts = conn.execute(
        sa.text("SELECT id, kind, resolved_at FROM alert WHERE subject_type = 'resident' AND subject_id = :old"),
        {"old": old},
    ).all()
    for alert_id, kind, resolved_at in alerts:
        if (
            resolved_at is None
            and conn.execute(
                sa.text(
                    "SELECT 1 FROM alert WHERE subject_type = 'resident' AND subject_id = :keep AND kind = :kind "
                    "AND resolved_at IS NULL"
                ),
                {"keep": keep, "kind": kind},
            ).first()
        ):
            conn.execute(
                _at("UPDATE alert SET status = 'resolved', resolved_at = :at, resolved_by = :actor WHERE id = :id"),
                {"at": now, "actor": ACTOR, "id": alert_id},
            )
        conn.execute(sa.text("UPDATE alert SET subject_id = :keep WHERE id = :id"), {"keep": keep, "id": alert_id})


def _merge_sign_in_limits(conn: sa.Connection, region: str) -> None:
    rows = conn.execute(
        sa.text(
            "SELECT phone, code_hash, expires_at, tries, tries_since, sent, sent_since FROM onetimecode ORDER BY phone"
        )
    ).all()
    groups: dict[str, list[Any]] = {}
    for row in rows:
        number = _e164(row.phone, region, "sign-in limits of")
        if number is not None:
            groups.setdefault(number, []).append(row)
    for number, same in groups.items():
        if len(same) == 1 and same[0].phone == number:
            continue
        latest = max(same, key=lambda r: _aware(r.expires_at))
        merged = {
            "phone": number,
            "code_hash": latest.code_hash,
            "expires_at": latest.expires_at,
            "tries": sum(r.tries for r in same),
            "tries_since": min((r.tries_since for r in same), key=_aware),
            "sent": sum(r.sent for r in same),
            "sent_since": min((r.sent_since for r in same), key=_aware),
        }
        for r in same:
            conn.execute(sa.text("DELETE FROM onetimecode WHERE phone = :p"), {"p": r.phone})
        conn.execute(
            sa.text(
                "INSERT INTO onetimecode (phone, code_hash, expires_at, tries, tries_since, sent, sent_since) "
                "VALUES (:phone, :code_hash, :expires_at, :tries, :tries_since, :sent, :sent_since)"
            ),
            merged,
        )


def _aware(value: datetime | str) -> datetime:
    """SQLite hands timestamps back as text or naive; everything stored is UTC."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def upgrade() -> None:
    with op.batch_alter_table("town", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_region", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True))
    op.create_table(
        "merged_resident",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("resident_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("merged_resident", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_merged_resident_resident_id"), ["resident_id"], unique=False)
    conn, region, now = op.get_bind(), _region(), datetime.now(UTC)
    _merge_residents(conn, region, now)
    _merge_sign_in_limits(conn, region)


def downgrade() -> None:
    with op.batch_alter_table("merged_resident", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merged_resident_resident_id"))
    op.drop_table("merged_resident")
    with op.batch_alter_table("town", schema=None) as batch_op:
        batch_op.drop_column("phone_region")
