"""Each station's counts read from the database, by the one rule in :mod:`helmet_cloud.domain.station_counts`,
and its fill level by :mod:`helmet_cloud.domain.fill_level` (the stock alerts' rule)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from helmet_cloud.domain.alert_rules import AlertKind
from helmet_cloud.domain.fill_level import FillLevel, fill_level
from helmet_cloud.domain.station_counts import LockerView, SlotCounts, SlotView, station_counts
from helmet_cloud.models import Alert, Locker, Slot, Station
from helmet_cloud.timeutil import aware


@dataclass(frozen=True, slots=True)
class StationStock:
    counts: SlotCounts
    lockers: int
    lockers_online: int
    last_reported: datetime | None  # the newest status any of its lockers sent; None: none ever did


def station_stock(session: Session, station_ids: Sequence[str]) -> dict[str, StationStock]:
    """The stock of each station named (a station with no lockers has all counts zero)."""
    ids = sorted(set(station_ids))
    lockers = session.exec(select(Locker).where(col(Locker.station_id).in_(ids))).all()
    slots: dict[str, list[SlotView]] = defaultdict(list)
    rows = session.exec(
        select(Slot.locker_id, Slot.slot, Slot.state, Slot.helmet_id)
        .join(Locker, col(Locker.id) == col(Slot.locker_id))
        .where(col(Locker.station_id).in_(ids))
    ).all()
    for locker_id, number, state, helmet_id in rows:
        slots[locker_id].append(SlotView(slot=number, state=state, has_helmet=helmet_id is not None))
    by_station: dict[str, list[Locker]] = defaultdict(list)
    for lk in lockers:
        by_station[lk.station_id].append(lk)
    out = {}
    for station_id in ids:
        mine = by_station.get(station_id, [])
        seen = [aware(lk.last_seen) for lk in mine if lk.last_seen is not None]
        out[station_id] = StationStock(
            counts=station_counts(LockerView(lk.slot_count, lk.online, slots.get(lk.id, [])) for lk in mine),
            lockers=len(mine),
            lockers_online=sum(lk.online for lk in mine),
            last_reported=max(seen) if seen else None,
        )
    return out


STOCK_KINDS = (AlertKind.STATION_EMPTY, AlertKind.STATION_LOW, AlertKind.STATION_FULL)


def fill_levels(
    session: Session, stations: Sequence[Station], stock: Mapping[str, StationStock]
) -> dict[str, FillLevel | None]:
    """Each station's fill level: its counts, its thresholds and the stock alerts open on it (their hysteresis)."""
    ids = [s.id for s in stations]
    active: dict[str, set[str]] = defaultdict(set)
    if ids:
        rows = session.exec(
            select(Alert.subject_id, Alert.kind).where(
                Alert.subject_type == "station",
                col(Alert.subject_id).in_(ids),
                col(Alert.kind).in_([k.value for k in STOCK_KINDS]),
                col(Alert.resolved_at).is_(None),
            )
        ).all()
        for subject_id, kind in rows:
            active[subject_id].add(kind)
    return {
        s.id: fill_level(
            stock[s.id].counts, low_threshold=s.low_threshold, high_threshold=s.high_threshold, active=active[s.id]
        )
        for s in stations
    }
