"""What staff do with an alert: acknowledge it (someone is on it) or resolve it by hand; both are audited."""

from __future__ import annotations

from sqlmodel import Session

from helmet_cloud.context import AppContext
from helmet_cloud.domain.roles import Caller
from helmet_cloud.domain.states import AlertStatus
from helmet_cloud.errors import ConflictError, NotFoundError
from helmet_cloud.models import Alert
from helmet_cloud.services import audit
from helmet_cloud.services.alerts import Changes
from helmet_cloud.timeutil import utcnow


def _locked(session: Session, alert_id: int) -> Alert:
    row = session.get(Alert, alert_id, with_for_update=True)
    if row is None:
        raise NotFoundError("no alert {alert_id}", alert_id=alert_id)
    return row


def _audit(session: Session, caller: Caller, action: str, row: Alert) -> None:
    audit.record(
        session,
        actor=caller,
        action=action,
        subject_type="alert",
        subject_id=str(row.id),
        detail={"kind": row.kind, "subject": f"{row.subject_type}/{row.subject_id}"},
    )


def acknowledge(session: Session, *, caller: Caller, alert_id: int) -> Alert:
    """The alert stays until its condition ends or it is resolved. Repeating changes nothing."""
    row = _locked(session, alert_id)
    if row.resolved_at is not None:
        raise ConflictError("alert {alert_id} is already resolved", alert_id=alert_id)
    if row.acknowledged_at is None:
        row.status, row.acknowledged_at, row.acknowledged_by = AlertStatus.ACKNOWLEDGED, utcnow(), caller.subject
        session.add(row)
        _audit(session, caller, "alert.acknowledge", row)
        session.commit()
        session.refresh(row)
    return row


def resolve(session: Session, ctx: AppContext, *, caller: Caller, alert_id: int) -> Alert:
    """Close the alert by hand. If its condition still holds, the next check opens a new one."""
    row = _locked(session, alert_id)
    if row.resolved_at is None:
        row.status, row.resolved_at, row.resolved_by = AlertStatus.RESOLVED, utcnow(), caller.subject
        session.add(row)
        _audit(session, caller, "alert.resolve", row)
        changes = Changes([("alert.resolved", row)])
        session.flush()
        notices = changes.notices()
        session.commit()
        session.refresh(row)
        if ctx.alerter is not None and ctx.alerter.notify is not None:
            ctx.alerter.notify(notices)
    return row
