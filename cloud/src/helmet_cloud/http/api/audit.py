"""The audit log for staff: who did what, newest first."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import col, select

from helmet_cloud.http.deps import DB_INT_MAX, SessionDep, StaffDep
from helmet_cloud.models import AuditEntry
from helmet_cloud.timeutil import aware

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str | None
    action: str
    subject_type: str
    subject_id: str
    detail: dict[str, Any] | None

    @classmethod
    def of(cls, row: AuditEntry) -> AuditPublic:
        return cls(
            id=row.id or 0,
            at=aware(row.at),  # SQLite hands times back naive
            actor=row.actor,
            role=row.role,
            action=row.action,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            detail=json.loads(row.detail) if row.detail else None,
        )


@router.get("")
def list_audit(
    session: SessionDep,
    _: StaffDep,
    actor: str | None = Query(default=None, max_length=64),
    action: str | None = Query(default=None, max_length=48),
    subject_type: str | None = Query(default=None, max_length=16),
    subject_id: str | None = Query(default=None, max_length=80),
    before_id: int | None = Query(default=None, ge=1, le=DB_INT_MAX, description="entries older than this id (paging)"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[AuditPublic]:
    """Entries newest first; page with ``before_id`` = the last id you got."""
    q = select(AuditEntry)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        q = q.where(AuditEntry.action == action)
    if subject_type:
        q = q.where(AuditEntry.subject_type == subject_type)
    if subject_id:
        q = q.where(AuditEntry.subject_id == subject_id)
    if before_id:
        q = q.where(col(AuditEntry.id) < before_id)
    return [AuditPublic.of(r) for r in session.exec(q.order_by(col(AuditEntry.id).desc()).limit(limit)).all()]
