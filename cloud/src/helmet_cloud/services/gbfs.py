"""The public feed's documents, in GBFS v3.0 form, built from stations, lockers and slots.

Helmets are not vehicles, but the GBFS vehicle fields are what feed
consumers read, so a helmet is counted as a vehicle and a slot as a dock
(docs/api.md, "Public feed"). No ``vehicle_types.json`` is published, so the
plain ``num_vehicles_available`` / ``num_docks_available`` counts apply.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from helmet_cloud.models import Locker, Slot, Station
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import aware
from helmet_protocol.events import SlotState

GBFS_VERSION = "3.0"
# The files listed in gbfs.json, by their GBFS names; each is served at /gbfs/{name}.json.
FEEDS = ("system_information", "station_information", "station_status", "system_alerts")


def rfc3339(value: datetime) -> str:
    """GBFS v3.0 timestamps: RFC 3339, whole seconds, UTC."""
    return aware(value).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def document(data: dict[str, Any], *, ttl: int, now: datetime) -> dict[str, Any]:
    """The envelope every GBFS v3.0 file shares."""
    return {"last_updated": rfc3339(now), "ttl": ttl, "version": GBFS_VERSION, "data": data}


def localized(text: str, language: str) -> list[dict[str, str]]:
    return [{"text": text, "language": language}]


def system_information(settings: CloudSettings) -> dict[str, Any]:
    return {
        "system_id": settings.feed_system_id,
        "languages": [settings.feed_language],
        "name": localized(settings.feed_name, settings.feed_language),
        "opening_hours": settings.feed_opening_hours,
        "feed_contact_email": settings.feed_contact_email,
        "timezone": settings.feed_timezone,
    }


def station_information(session: Session, settings: CloudSettings) -> dict[str, Any]:
    capacity = dict(
        session.exec(select(Locker.station_id, func.sum(Locker.slot_count)).group_by(col(Locker.station_id))).all()
    )
    stations = []
    for st in session.exec(select(Station).order_by(col(Station.id))).all():
        row: dict[str, Any] = {
            "station_id": st.id,
            "name": localized(st.name, settings.feed_language),
            "lat": st.lat,
            "lon": st.lon,
        }
        if st.address:  # GBFS optional fields are left out rather than sent empty
            row["address"] = st.address
        row["capacity"] = int(capacity.get(st.id) or 0)
        stations.append(row)
    return {"stations": stations}


@dataclass(slots=True)
class _LockerCounts:
    occupied: int = 0
    disabled_with_helmet: int = 0
    disabled_empty: int = 0


def station_status(session: Session, *, now: datetime) -> dict[str, Any]:
    """Per station: helmets and free slots, and whether an online locker lends and takes them back.

    A slot with no row yet is empty (as ingest derives it); a slot number
    beyond the locker's slot count is ignored, so the four counts add up to
    ``capacity``.
    """
    lockers = session.exec(select(Locker)).all()
    counts: dict[str, _LockerCounts] = defaultdict(_LockerCounts)
    rows = session.exec(
        select(Slot.locker_id, Slot.state, func.count(col(Slot.helmet_id)), func.count())
        .join(Locker, col(Locker.id) == col(Slot.locker_id))
        .where(col(Slot.state) != SlotState.EMPTY.value, col(Slot.slot) <= col(Locker.slot_count))
        .group_by(col(Slot.locker_id), col(Slot.state))
    ).all()
    for locker_id, state, with_helmet, n in rows:
        c = counts[locker_id]
        if state == SlotState.OCCUPIED:
            c.occupied += n
        elif state == SlotState.DISABLED:
            c.disabled_with_helmet += with_helmet
            c.disabled_empty += n - with_helmet
    by_station: dict[str, list[Locker]] = defaultdict(list)
    for lk in lockers:
        by_station[lk.station_id].append(lk)
    stations = []
    for station_id in session.exec(select(Station.id).order_by(col(Station.id))).all():
        mine = by_station.get(station_id, [])
        available = disabled_helmets = free = disabled_free = 0
        renting = returning = False
        for lk in mine:
            c = counts[lk.id]
            lk_free = max(0, lk.slot_count - c.occupied - c.disabled_with_helmet - c.disabled_empty)
            available += c.occupied
            disabled_helmets += c.disabled_with_helmet
            free += lk_free
            disabled_free += c.disabled_empty
            renting = renting or (lk.online and c.occupied > 0)
            returning = returning or (lk.online and lk_free > 0)
        seen = [aware(lk.last_seen) for lk in mine if lk.last_seen is not None]
        stations.append(
            {
                "station_id": station_id,
                "num_vehicles_available": available,
                "num_vehicles_disabled": disabled_helmets,
                "num_docks_available": free,
                "num_docks_disabled": disabled_free,
                "is_installed": bool(seen),
                "is_renting": renting,
                "is_returning": returning,
                # A station none of whose lockers ever reported has no time of its own: it is not installed.
                "last_reported": rfc3339(max(seen) if seen else now),
            }
        )
    return {"stations": stations}


def system_alerts() -> dict[str, Any]:
    """No alerts are published yet; the document is still a valid, empty list."""
    return {"alerts": []}
