"""Each station's counts read from the database, by the one rule in :mod:`helmet_cloud.domain.station_counts`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from helmet_cloud.domain.station_counts import LockerView, SlotCounts, SlotView, station_counts
from helmet_cloud.models import Locker, Slot
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
