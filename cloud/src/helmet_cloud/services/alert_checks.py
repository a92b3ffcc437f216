"""Evaluate alert rules against the database for given lockers, stations, slots and passes.

Every check reads stored state (slots, lockers, raw events) and settles the
alerts of the subjects it was given, so running one twice, or for events that
arrived in another order, ends in the same alerts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from helmet_cloud.domain import alert_texts as texts
from helmet_cloud.domain.alert_rules import (
    FAULT_KINDS,
    FORGED_REASONS,
    AlertKind,
    Stock,
    active_fault,
    densest,
    locker_offline,
    pass_overused,
    stock_alerts,
)
from helmet_cloud.domain.alert_texts import AlertText
from helmet_cloud.domain.states import AlertSeverity
from helmet_cloud.ingest.derived import chunks
from helmet_cloud.models import IssuedPass, Locker, RawEvent, Station
from helmet_cloud.services.alerts import (
    Changes,
    Subject,
    active_kinds,
    prefetch,
    raise_alert,
    settle,
    station_names,
    station_places,
)
from helmet_cloud.services.station_stock import station_stock
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import aware
from helmet_protocol.events import EventKind, FaultReason

STATION_KINDS = (AlertKind.STATION_EMPTY, AlertKind.STATION_LOW, AlertKind.STATION_FULL)


def check_stations(session: Session, changes: Changes, now: datetime, station_ids: Iterable[str] | None) -> None:
    """Empty, nearly empty and full, with hysteresis taken from the alerts already open."""
    q = select(Station)
    if station_ids is not None:
        q = q.where(col(Station.id).in_(sorted(set(station_ids))))
    stations = session.exec(q.order_by(col(Station.id))).all()
    if not stations:
        return
    ids = [s.id for s in stations]
    stock = station_stock(session, ids)
    active = active_kinds(session, "station", ids)
    prefetch(session, changes, "station", ids)
    for st in stations:
        counts = stock[st.id].counts
        have = Stock(helmets=counts.helmets_available, free_slots=counts.free_slots, slots=counts.capacity)
        want = stock_alerts(
            have, low_threshold=st.low_threshold, high_threshold=st.high_threshold, active=active[st.id]
        )
        name = st.name or st.id
        at = {"station": name, "station_id": st.id}  # the id: pages show the station's name in their language
        full = (
            AlertText(texts.STATION_FULL_NONE, {**at, "slots": have.slots})
            if have.free_slots == 0
            else AlertText(texts.STATION_FULL_FEW, {**at, "free": have.free_slots, "slots": have.slots})
        )
        messages = {
            AlertKind.STATION_EMPTY: ("warning", AlertText(texts.STATION_EMPTY, at)),
            AlertKind.STATION_LOW: (
                "info",
                AlertText(texts.STATION_LOW, {**at, "helmets": have.helmets, "low": st.low_threshold}),
            ),
            AlertKind.STATION_FULL: ("warning", full),
        }
        for kind in STATION_KINDS:
            severity, message = messages[kind]
            settle(
                session,
                changes,
                kind,
                Subject("station", st.id),
                active=kind in want,
                severity=severity,
                message=message,
                now=now,
            )


def check_lockers(
    session: Session, changes: Changes, now: datetime, settings: CloudSettings, locker_ids: Iterable[str] | None
) -> None:
    """Offline by its Last Will (or by silence, when a heartbeat is set); clears when it is back."""
    q = select(Locker)
    if locker_ids is not None:
        q = q.where(col(Locker.id).in_(sorted(set(locker_ids))))
    heartbeat = timedelta(minutes=settings.locker_heartbeat_minutes) if settings.locker_heartbeat_minutes else None
    lockers = session.exec(q.order_by(col(Locker.id))).all()
    prefetch(session, changes, "locker", [lk.id for lk in lockers])
    names = station_names(session, [lk.id for lk in lockers])
    for lk in lockers:
        heard = lk.last_heard_at or lk.last_seen
        last = aware(heard) if heard is not None else None
        offline = locker_offline(online=lk.online, last_heard=last, now=now, heartbeat=heartbeat)
        place = {"locker": lk.id, "station": names.get(lk.id, lk.station_id), "station_id": lk.station_id}
        text = (
            AlertText(texts.LOCKER_DROPPED, place)
            if not lk.online or last is None
            else AlertText(texts.LOCKER_SILENT, {**place, "last_at": last.isoformat()})
        )
        settle(
            session,
            changes,
            AlertKind.LOCKER_OFFLINE,
            Subject("locker", lk.id),
            active=offline,
            severity=AlertSeverity.CRITICAL,
            message=text,
            now=now,
        )


def check_slots(session: Session, changes: Changes, now: datetime, slots: Iterable[tuple[str, int]]) -> None:
    """Door ajar and other slot faults, from the slot's fault events in seq order."""
    keys = sorted(set(slots))
    events: dict[tuple[str, int], list[RawEvent]] = defaultdict(list)
    for part in chunks(keys):
        rows = session.exec(
            select(RawEvent).where(
                tuple_(col(RawEvent.locker_id), col(RawEvent.slot)).in_(part),
                col(RawEvent.kind).in_([k.value for k in FAULT_KINDS]),
            )
        ).all()
        for e in rows:
            events[(e.locker_id, e.slot or 0)].append(e)
    prefetch(session, changes, "slot", [Subject.slot(*key).id for key in keys])
    places = station_places(session, [locker_id for locker_id, _ in keys])
    for locker_id, slot in keys:
        ordered = sorted(events[(locker_id, slot)], key=lambda e: e.seq)
        fault = active_fault((e.kind, e.reason) for e in ordered)
        subject = Subject.slot(locker_id, slot)
        station_id, name, _names = places.get(locker_id, (locker_id, locker_id, {}))
        where = {"station": name, "station_id": station_id, "locker": locker_id, "slot": slot}
        settle(
            session,
            changes,
            AlertKind.DOOR_AJAR,
            subject,
            active=fault == FaultReason.DOOR_AJAR,
            severity=AlertSeverity.WARNING,
            message=AlertText(texts.DOOR_AJAR, where),
            now=now,
        )
        settle(
            session,
            changes,
            AlertKind.SLOT_FAULT,
            subject,
            active=fault is not None and fault != FaultReason.DOOR_AJAR,
            severity=AlertSeverity.CRITICAL if fault == FaultReason.LOCK_JAMMED else AlertSeverity.WARNING,
            message=AlertText(texts.SLOT_FAULT, {**where, "fault": fault or ""}),
            now=now,
        )


def check_passes(session: Session, changes: Changes, now: datetime, pass_ids: Iterable[str]) -> None:
    """Helmets borrowed on one pass beyond its quantity, or at two lockers: a locker offline while the pass was
    used elsewhere honoured it too (:func:`pass_overused`).

    Over-use is a fact about the past, so it is never cleared automatically; staff resolve it.
    """
    ids = sorted(set(pass_ids))
    issued_by_id: dict[str, IssuedPass] = {}
    borrows: dict[str, list[str]] = defaultdict(list)
    for part in chunks(ids):
        issued_by_id.update((p.id, p) for p in session.exec(select(IssuedPass).where(col(IssuedPass.id).in_(part))))
        rows = session.exec(
            select(RawEvent.pass_id, RawEvent.locker_id).where(
                col(RawEvent.pass_id).in_(part), RawEvent.kind == EventKind.HELMET_BORROWED.value
            )
        ).all()
        for pass_id, locker_id in rows:
            borrows[pass_id or ""].append(locker_id)
    over = [p for p in ids if p in issued_by_id and pass_overused(issued_by_id[p].quantity, Counter(borrows[p]))]
    prefetch(session, changes, "pass", over)
    for pass_id in over:
        issued, lockers = issued_by_id[pass_id], borrows[pass_id]
        by_locker = sorted(Counter(lockers).items())
        where = ", ".join(f"{lk} ({n})" for lk, n in by_locker)
        text = AlertText(
            texts.OVERUSED,
            {"resident": issued.holder_id, "quantity": issued.quantity, "taken": len(lockers), "where": where},
        )
        raise_alert(
            session,
            changes,
            AlertKind.PASS_OVERUSE,
            Subject("pass", pass_id),
            severity=AlertSeverity.WARNING,
            message=text,
            now=now,
        )


def forged(row: RawEvent) -> bool:
    return row.kind == EventKind.PASS_REJECTED and row.reason in FORGED_REASONS


def check_forged(
    session: Session, changes: Changes, now: datetime, settings: CloudSettings, seen: Iterable[tuple[str, datetime]]
) -> None:
    """A burst of forged passes at one locker, judged by the locker's timestamps around the new rejections.

    Stays open until staff resolve it; a later burst only refreshes it.
    """
    window = timedelta(minutes=settings.forged_pass_window_minutes)
    spans: dict[str, tuple[datetime, datetime]] = {}
    for locker_id, ts in seen:
        lo, hi = spans.get(locker_id, (ts, ts))
        spans[locker_id] = (min(lo, ts), max(hi, ts))
    for locker_id, (lo, hi) in sorted(spans.items()):
        rows = session.exec(
            select(RawEvent)
            .where(
                RawEvent.locker_id == locker_id,
                RawEvent.kind == EventKind.PASS_REJECTED.value,
                col(RawEvent.ts) >= lo - window,
                col(RawEvent.ts) <= hi + window,
            )
            .order_by(col(RawEvent.ts))
        ).all()
        bad = [r for r in rows if forged(r)]
        count = densest([aware(r.ts) for r in bad], window)
        if count >= settings.forged_pass_burst:
            reasons = dict(sorted(Counter(r.reason or "" for r in bad).items()))
            text = AlertText(
                texts.FORGED_PASSES,
                {
                    "locker": locker_id,
                    "count": count,
                    "minutes": settings.forged_pass_window_minutes,
                    "reasons": reasons,
                },
            )
            raise_alert(
                session,
                changes,
                AlertKind.FORGED_PASSES,
                Subject("locker", locker_id),
                severity=AlertSeverity.CRITICAL,
                message=text,
                now=now,
            )
