"""What the pages show, read from the database: overview counts, slot health, demand, nearest stations."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from helmet_cloud.domain.states import LoanStatus
from helmet_cloud.models import Alert, Helmet, Loan, Locker, LockerCommand, RawEvent, Slot, Station
from helmet_cloud.services.station_stock import station_stock
from helmet_cloud.services.stations import StationStatus, stations_with_counts
from helmet_cloud.timeutil import aware
from helmet_protocol.events import EventKind

# Every event that means the slot's lock was pulsed open.
UNLOCKS = (
    EventKind.HELMET_BORROWED,
    EventKind.HELMET_RETURNED,
    EventKind.HELMET_STOCKED,
    EventKind.HELMET_REMOVED,
    EventKind.UNLOCK_TIMEOUT,
    EventKind.BORROW_CANCELLED,
    EventKind.RETURN_CANCELLED,
)


@dataclass(frozen=True, slots=True)
class Overview:
    helmets_in_stations: int
    on_loan: int
    overdue: int
    lost: int
    lockers_online: int
    lockers_offline: int
    open_alerts: int


def overview(session: Session) -> Overview:
    open_loans = select(func.count()).select_from(Loan).where(Loan.status == LoanStatus.OPEN)
    online = Counter(dict(session.exec(select(Locker.online, func.count()).group_by(col(Locker.online))).all()))
    return Overview(
        helmets_in_stations=sum(
            st.counts.helmets_available + st.counts.helmets_disabled
            for st in station_stock(session, session.exec(select(Station.id)).all()).values()
        ),
        on_loan=session.exec(open_loans).one(),
        overdue=session.exec(open_loans.where(col(Loan.overdue_at).is_not(None), col(Loan.lost_at).is_(None))).one(),
        lost=session.exec(open_loans.where(col(Loan.lost_at).is_not(None))).one(),
        lockers_online=online[True],
        lockers_offline=online[False],
        open_alerts=session.exec(select(func.count()).select_from(Alert).where(col(Alert.resolved_at).is_(None))).one(),
    )


def all_stations(session: Session) -> list[StationStatus]:
    return stations_with_counts(session, list(session.exec(select(Station).order_by(col(Station.id))).all()))


def capacity(s: StationStatus) -> int:
    """Slots that can hold a helmet now: occupied and empty (disabled and faulty ones cannot)."""
    return s.helmets_available + s.free_slots


def fill(s: StationStatus) -> float | None:
    cap = capacity(s)
    return s.helmets_available / cap if cap else None


@dataclass(frozen=True, slots=True)
class SlotHealth:
    locker_id: str
    slot: int
    state: str
    helmet_id: str | None
    unlocks: int
    faults: int
    last_fault: str | None


def lockers_of(session: Session, station_id: str) -> list[Locker]:
    return list(session.exec(select(Locker).where(Locker.station_id == station_id).order_by(col(Locker.id))).all())


def slot_health(session: Session, locker_ids: list[str]) -> dict[str, list[SlotHealth]]:
    """Each locker's slots in order, with how often each was unlocked and faulted."""
    if not locker_ids:
        return {}
    slots = session.exec(
        select(Slot).where(col(Slot.locker_id).in_(locker_ids)).order_by(col(Slot.locker_id), col(Slot.slot))
    ).all()
    counts = session.exec(
        select(RawEvent.locker_id, RawEvent.slot, RawEvent.kind, func.count())
        .where(col(RawEvent.locker_id).in_(locker_ids), col(RawEvent.slot).is_not(None))
        .where(col(RawEvent.kind).in_([*UNLOCKS, EventKind.SLOT_FAULT]))
        .group_by(col(RawEvent.locker_id), col(RawEvent.slot), col(RawEvent.kind))
    ).all()
    unlocks: Counter[tuple[str, int]] = Counter()
    faults: Counter[tuple[str, int]] = Counter()
    for locker_id, slot, kind, n in counts:
        (faults if kind == EventKind.SLOT_FAULT else unlocks)[(locker_id, slot or 0)] += n
    last_faults = dict(
        ((e.locker_id, e.slot or 0), e.reason)
        for e in session.exec(
            select(RawEvent)
            .where(col(RawEvent.locker_id).in_(locker_ids), RawEvent.kind == EventKind.SLOT_FAULT)
            .order_by(col(RawEvent.ts))
        ).all()
    )
    out: dict[str, list[SlotHealth]] = {lk: [] for lk in locker_ids}
    for s in slots:
        key = (s.locker_id, s.slot)
        out[s.locker_id].append(
            SlotHealth(s.locker_id, s.slot, s.state, s.helmet_id, unlocks[key], faults[key], last_faults.get(key))
        )
    return out


def recent_events(session: Session, locker_ids: list[str], limit: int = 30) -> list[RawEvent]:
    if not locker_ids:
        return []
    return list(
        session.exec(
            select(RawEvent)
            .where(col(RawEvent.locker_id).in_(locker_ids))
            .order_by(col(RawEvent.ts).desc(), col(RawEvent.event_id).desc())
            .limit(limit)
        ).all()
    )


def helmet_events(session: Session, helmet_id: str, limit: int = 30) -> list[RawEvent]:
    return list(
        session.exec(
            select(RawEvent)
            .where(RawEvent.helmet_id == helmet_id)
            .order_by(col(RawEvent.ts).desc(), col(RawEvent.event_id).desc())
            .limit(limit)
        ).all()
    )


def recent_commands(session: Session, locker_ids: list[str], limit: int = 20) -> list[LockerCommand]:
    if not locker_ids:
        return []
    return list(
        session.exec(
            select(LockerCommand)
            .where(col(LockerCommand.locker_id).in_(locker_ids))
            .order_by(col(LockerCommand.requested_at).desc())
            .limit(limit)
        ).all()
    )


FLOWS = (EventKind.HELMET_BORROWED, EventKind.HELMET_RETURNED)


def _utc_hour(session: Session) -> ColumnElement[Any]:
    """The start of an event's hour in UTC, computed by the database (so a year of events is never read)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", col(RawEvent.ts)))
    return func.strftime("%Y-%m-%d %H:00:00", col(RawEvent.ts))  # SQLite keeps UTC text


def flows_per_hour(
    session: Session, since: datetime, locker_ids: list[str] | None = None
) -> list[tuple[datetime, str, int]]:
    """(UTC hour, kind, count) of borrows and returns since ``since``, optionally at some lockers only."""
    hour = _utc_hour(session).label("hour")
    q = select(hour, RawEvent.kind, func.count()).where(col(RawEvent.ts) >= since, col(RawEvent.kind).in_(FLOWS))
    if locker_ids is not None:
        q = q.where(col(RawEvent.locker_id).in_(locker_ids))
    out = []
    for at, kind, n in session.exec(q.group_by(hour, col(RawEvent.kind))).all():
        start = datetime.fromisoformat(at) if isinstance(at, str) else at
        out.append((aware(start), kind, n))
    return out


def km_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def nearest_with_room(
    stations: list[StationStatus], lat: float, lon: float, *, limit: int = 3
) -> list[tuple[StationStatus, float]]:
    """Stations with a free slot and a locker online, nearest first, with their distance in km."""
    ok = [s for s in stations if s.free_slots > 0 and s.lockers_online > 0]
    ranked = sorted(((s, km_between(lat, lon, s.lat, s.lon)) for s in ok), key=lambda p: (p[1], p[0].id))
    return ranked[:limit]


def nearest_with_helmets(
    stations: list[StationStatus], lat: float, lon: float, *, excluding: str, limit: int = 3
) -> list[tuple[StationStatus, float]]:
    """Other stations with a helmet to borrow, nearest first, with their distance in km (an offline locker
    still honours a pass at its camera, so it counts)."""
    ok = [s for s in stations if s.helmets_available > 0 and s.id != excluding]
    ranked = sorted(((s, km_between(lat, lon, s.lat, s.lon)) for s in ok), key=lambda p: (p[1], p[0].id))
    return ranked[:limit]


def helmet(session: Session, helmet_id: str) -> Helmet | None:
    return session.get(Helmet, helmet_id)
