"""Alerts for staff: list, acknowledge, resolve."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from sqlmodel import col, select

from helmet_cloud.http.api.deps import DB_INT_MAX, Caller, SessionDep, StaffDep
from helmet_cloud.models import Alert
from helmet_cloud.services import audit
from helmet_cloud.services.alerts import AlertPublic, Changes
from helmet_cloud.timeutil import utcnow

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


def _get(session: SessionDep, alert_id: int) -> Alert:
    row = session.get(Alert, alert_id, with_for_update=True)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    return row


def _audit(session: SessionDep, caller: Caller, action: str, row: Alert) -> None:
    audit.record(
        session,
        actor=caller,
        action=action,
        subject_type="alert",
        subject_id=str(row.id),
        detail={"kind": row.kind, "subject": f"{row.subject_type}/{row.subject_id}"},
    )


@router.post("/{alert_id}/acknowledge")
def acknowledge(alert_id: AlertId, session: SessionDep, caller: StaffDep) -> AlertPublic:
    """Someone is on it: the alert stays until its condition ends or it is resolved. Repeating changes nothing."""
    row = _get(session, alert_id)
    if row.resolved_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"alert {alert_id} is already resolved")
    if row.acknowledged_at is None:
        row.status, row.acknowledged_at, row.acknowledged_by = "acknowledged", utcnow(), caller.subject
        session.add(row)
        _audit(session, caller, "alert.acknowledge", row)
        session.commit()
        session.refresh(row)
    return AlertPublic.of(row)


@router.post("/{alert_id}/resolve")
def resolve(alert_id: AlertId, session: SessionDep, caller: StaffDep, request: Request) -> AlertPublic:
    """Close the alert by hand. If its condition still holds, the next check opens a new one."""
    row = _get(session, alert_id)
    if row.resolved_at is None:
        row.status, row.resolved_at, row.resolved_by = "resolved", utcnow(), caller.subject
        session.add(row)
        _audit(session, caller, "alert.resolve", row)
        changes = Changes([("alert.resolved", row)])
        session.flush()
        notices = changes.notices()
        session.commit()
        session.refresh(row)
        alerter = getattr(request.app.state, "alerter", None)
        if alerter is not None and alerter.notify is not None:
            alerter.notify(notices)
    return AlertPublic.of(row)
