"""Alert rows: open one, keep it fresh while its condition holds, resolve it when the condition ends.

There is at most one unresolved alert per (kind, subject) (a partial unique
index enforces it); raising a condition again only moves ``last_seen_at``.
Opening and resolving are collected in :class:`Changes` so that webhooks go
out only after the transaction that made them has committed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from helmet_cloud.domain.alert_rules import AlertKind
from helmet_cloud.domain.alert_texts import AlertText
from helmet_cloud.domain.states import AlertSeverity, AlertStatus
from helmet_cloud.ingest.derived import chunks
from helmet_cloud.models import Alert, Locker, Station

SEVERITIES = ("info", "warning", "critical")
STATUSES = tuple(AlertStatus)
Message = str | AlertText  # a plain string: English only (kept for old callers); AlertText: shown in any language


def write_message(row: Alert, message: Message) -> None:
    """The English text for the API and webhooks, and, for an :class:`AlertText`, its template and fields."""
    if isinstance(message, AlertText):
        row.message = message.english()[:500]
        row.template, row.params = message.template, json.dumps(message.params, sort_keys=True, ensure_ascii=False)
    else:
        row.message, row.template, row.params = message[:500], None, None


class AlertPublic(BaseModel):
    id: int
    kind: str
    severity: str
    subject_type: str
    subject_id: str
    message: str
    status: str
    opened_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None

    @classmethod
    def of(cls, row: Alert) -> AlertPublic:
        return cls.model_validate(row, from_attributes=True)


@dataclass(frozen=True, slots=True)
class Notice:
    """What a webhook receives: ``event`` is ``alert.opened`` or ``alert.resolved``."""

    event: str
    alert: dict[str, Any]


@dataclass(slots=True)
class Changes:
    """Alerts opened or resolved in one transaction, and the unresolved alerts it read in bulk (:func:`prefetch`)."""

    items: list[tuple[str, Alert]] = field(default_factory=list)
    unresolved: dict[tuple[str, str, str], Alert] = field(default_factory=dict)  # (kind, subject type, id)
    prefetched: set[tuple[str, str]] = field(default_factory=set)  # (subject type, id) whose alerts are all read

    def notices(self) -> list[Notice]:
        """Call after a flush (ids assigned) and before the commit expires the rows."""
        return [Notice(event, AlertPublic.of(row).model_dump(mode="json")) for event, row in self.items]


@dataclass(frozen=True, slots=True)
class Subject:
    type: str
    id: str

    @classmethod
    def slot(cls, locker_id: str, slot: int) -> Subject:
        return cls("slot", f"{locker_id}/{slot}")


def unresolved(session: Session, kind: AlertKind, subject: Subject) -> Alert | None:
    return session.exec(
        select(Alert).where(
            Alert.kind == kind.value,
            Alert.subject_type == subject.type,
            Alert.subject_id == subject.id,
            col(Alert.resolved_at).is_(None),
        )
    ).first()


def prefetch(session: Session, changes: Changes, subject_type: str, subject_ids: Iterable[str]) -> None:
    """Read the unresolved alerts of many subjects in one query, for :func:`settle` to use instead of one each."""
    ids = sorted({sid for sid in subject_ids if (subject_type, sid) not in changes.prefetched})
    for part in chunks(ids):
        rows = session.exec(
            select(Alert).where(
                Alert.subject_type == subject_type,
                col(Alert.subject_id).in_(part),
                col(Alert.resolved_at).is_(None),
            )
        ).all()
        for row in rows:
            changes.unresolved[(row.kind, subject_type, row.subject_id)] = row
    changes.prefetched.update((subject_type, sid) for sid in ids)


def _unresolved(session: Session, changes: Changes, kind: AlertKind, subject: Subject) -> Alert | None:
    if (subject.type, subject.id) in changes.prefetched:
        return changes.unresolved.get((kind.value, subject.type, subject.id))
    return unresolved(session, kind, subject)


def active_kinds(session: Session, subject_type: str, subject_ids: list[str]) -> dict[str, set[str]]:
    """The kinds of unresolved alerts on each of these subjects."""
    out: dict[str, set[str]] = {sid: set() for sid in subject_ids}
    rows = session.exec(
        select(Alert.subject_id, Alert.kind).where(
            Alert.subject_type == subject_type,
            col(Alert.subject_id).in_(subject_ids),
            col(Alert.resolved_at).is_(None),
        )
    ).all()
    for subject_id, kind in rows:
        out.setdefault(subject_id, set()).add(kind)
    return out


def raise_alert(
    session: Session,
    changes: Changes,
    kind: AlertKind,
    subject: Subject,
    *,
    severity: str,
    message: Message,
    now: datetime,
) -> Alert:
    """Open the alert, or, if one is unresolved already, note that its condition still holds (and its numbers)."""
    row = _unresolved(session, changes, kind, subject)
    if row is None:
        row = Alert(
            kind=kind.value,
            severity=severity,
            subject_type=subject.type,
            subject_id=subject.id,
            message="",
            opened_at=now,
            last_seen_at=now,
        )
        changes.items.append(("alert.opened", row))
        if (subject.type, subject.id) in changes.prefetched:
            changes.unresolved[(kind.value, subject.type, subject.id)] = row
    else:
        row.last_seen_at, row.severity = now, severity
    write_message(row, message)
    session.add(row)
    return row


def clear_alert(session: Session, changes: Changes, kind: AlertKind, subject: Subject, *, now: datetime) -> None:
    """The condition has ended: resolve the unresolved alert, if any (``resolved_by`` stays None)."""
    row = _unresolved(session, changes, kind, subject)
    if row is not None:
        changes.unresolved.pop((kind.value, subject.type, subject.id), None)
        row.status, row.resolved_at = AlertStatus.RESOLVED, now
        session.add(row)
        changes.items.append(("alert.resolved", row))


def settle(
    session: Session,
    changes: Changes,
    kind: AlertKind,
    subject: Subject,
    *,
    active: bool,
    severity: str,
    message: Message,
    now: datetime,
) -> None:
    """Raise the alert when its condition is true, clear it when false."""
    if active:
        raise_alert(session, changes, kind, subject, severity=severity, message=message, now=now)
    else:
        clear_alert(session, changes, kind, subject, now=now)


def record_event(
    session: Session, changes: Changes, kind: AlertKind, subject: Subject, *, message: Message, now: datetime
) -> None:
    """An informational alert about something that happened once: opened and resolved together."""
    row = Alert(
        kind=kind.value,
        severity=AlertSeverity.INFO,
        subject_type=subject.type,
        subject_id=subject.id,
        message="",
        status=AlertStatus.RESOLVED,
        opened_at=now,
        last_seen_at=now,
        resolved_at=now,
    )
    write_message(row, message)
    session.add(row)
    changes.items.append(("alert.opened", row))
    changes.items.append(("alert.resolved", row))


def station_places(session: Session, locker_ids: Iterable[str]) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Each locker's station: its id, English name (its id if it has none) and names in other languages."""
    out: dict[str, tuple[str, str, dict[str, str]]] = {}
    for part in chunks(sorted(set(locker_ids))):
        rows = session.exec(
            select(Locker.id, Station.id, Station.name, Station.names)
            .join(Station, col(Station.id) == col(Locker.station_id))
            .where(col(Locker.id).in_(part))
        ).all()
        for locker_id, station_id, name, names in rows:
            out[locker_id] = (station_id, name or station_id, dict(names or {}))
    return out


def station_names(session: Session, locker_ids: Iterable[str], lang: str | None = None) -> dict[str, str]:
    """Each locker's station, by name, for texts people read: the English name (alerts, whose English text the
    API gives), or its name in ``lang`` where the station has one (pages)."""
    return {
        locker_id: (names.get(lang) if lang else None) or name
        for locker_id, (_sid, name, names) in station_places(session, locker_ids).items()
    }


def local_station_names(session: Session, station_ids: Iterable[str], lang: str) -> dict[str, str]:
    """Stations' names in ``lang`` (the English name where there is none), by station id: alert texts on a page."""
    out: dict[str, str] = {}
    for part in chunks(sorted(set(station_ids))):
        for st in session.exec(select(Station).where(col(Station.id).in_(part))).all():
            out[st.id] = (st.names or {}).get(lang) or st.name or st.id
    return out
