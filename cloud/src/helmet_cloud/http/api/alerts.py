"""Alerts for staff: list, acknowledge, resolve."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlmodel import col, select

from helmet_cloud.http.deps import DB_INT_MAX, CtxDep, SessionDep, StaffDep
from helmet_cloud.models import Alert
from helmet_cloud.services import alert_actions
from helmet_cloud.services.alerts import AlertPublic

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]


@router.get("")
def list_alerts(
    session: SessionDep,
    _: StaffDep,
    status_: Literal["open", "acknowledged", "resolved", "unresolved"] | None = Query(default=None, alias="status"),
    kind: str | None = Query(default=None, max_length=32),
    subject_type: str | None = Query(default=None, max_length=16),
    subject_id: str | None = Query(default=None, max_length=80),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=DB_INT_MAX),
) -> list[AlertPublic]:
    """Alerts, newest first. ``status=unresolved`` means open or acknowledged."""
    q = select(Alert)
    if status_ == "unresolved":
        q = q.where(col(Alert.resolved_at).is_(None))
    elif status_:
        q = q.where(Alert.status == status_)
    if kind:
        q = q.where(Alert.kind == kind)
    if subject_type:
        q = q.where(Alert.subject_type == subject_type)
    if subject_id:
        q = q.where(Alert.subject_id == subject_id)
    rows = session.exec(q.order_by(col(Alert.opened_at).desc(), col(Alert.id).desc()).offset(offset).limit(limit))
    return [AlertPublic.of(r) for r in rows.all()]


@router.post("/{alert_id}/acknowledge")
def acknowledge(alert_id: AlertId, session: SessionDep, caller: StaffDep) -> AlertPublic:
    """Someone is on it: the alert stays until its condition ends or it is resolved. Repeating changes nothing."""
    return AlertPublic.of(alert_actions.acknowledge(session, caller=caller, alert_id=alert_id))


@router.post("/{alert_id}/resolve")
def resolve(alert_id: AlertId, session: SessionDep, ctx: CtxDep, caller: StaffDep) -> AlertPublic:
    """Close the alert by hand. If its condition still holds, the next check opens a new one."""
    return AlertPublic.of(alert_actions.resolve(session, ctx, caller=caller, alert_id=alert_id))
