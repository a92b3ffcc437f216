"""Stations and their lockers: registering them, changing them, and what each holds now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field
from sqlmodel import Session, select

from helmet_cloud.adapters.dynsec import BrokerAdminError
from helmet_cloud.context import AppContext
from helmet_cloud.domain.fill_level import FillLevel
from helmet_cloud.domain.roles import Caller
from helmet_cloud.errors import ConflictError, InvalidError, NotFoundError, UpstreamError
from helmet_cloud.models import Locker, Station, StationBase, Town
from helmet_cloud.services import audit
from helmet_cloud.services.committed import Committed
from helmet_cloud.services.lockers import ensure_slots, publish_config
from helmet_cloud.services.station_stock import fill_levels, station_stock
from helmet_protocol.messages import MAX_SLOTS
from helmet_protocol.topics import LOCKER_ID_RE


class StationStatus(StationBase):
    """A station and its counts (:mod:`helmet_cloud.domain.station_counts`): the API's, the pages' and the feed's."""

    id: str
    helmets_available: int = Field(description="helmets in slots in service: what a pass can open now")
    free_slots: int = Field(description="empty slots in service: where a helmet can be returned now")
    disabled_slots: int = Field(description="slots disabled or in fault, with or without a helmet")
    capacity: int = Field(description="every slot of the station's lockers, as registered")
    lockers: int
    lockers_online: int
    fill_level: FillLevel | None = Field(
        description="empty, low, normal or full, by the stock alerts' thresholds (the alerts open say the same); "
        "null: no usable slot"
    )


def stations_with_counts(session: Session, stations: Sequence[Station]) -> list[StationStatus]:
    stock = station_stock(session, [s.id for s in stations])
    levels = fill_levels(session, stations, stock)
    out = []
    for s in stations:
        st = stock[s.id]
        out.append(
            StationStatus(
                **s.model_dump(),
                helmets_available=st.counts.helmets_available,
                free_slots=st.counts.free_slots,
                disabled_slots=st.counts.disabled_slots,
                capacity=st.counts.capacity,
                lockers=st.lockers,
                lockers_online=st.lockers_online,
                fill_level=levels[s.id],
            )
        )
    return out


def create_station(session: Session, ctx: AppContext, *, caller: Caller, station: Station) -> Station:
    """Register a station in an existing town, audited; the public feed shows it at once."""
    if session.get(Town, station.town_id) is None:
        raise InvalidError("no town {town}", town=station.town_id)
    if session.get(Station, station.id) is not None:
        raise ConflictError("station {station} exists", station=station.id)
    session.add(station)
    audit.record(
        session,
        actor=caller,
        action="station.create",
        subject_type="station",
        subject_id=station.id,
        detail={"name": station.name, "town_id": station.town_id},
    )
    session.commit()
    ctx.after_commit(Committed(feed_changed=True))
    session.refresh(station)
    return station


def update_station(
    session: Session, ctx: AppContext, *, caller: Caller, station_id: str, changes: dict[str, Any]
) -> Station:
    """Rename a station, correct its address or change its alert thresholds, audited."""
    station = session.get(Station, station_id)
    if station is None:
        raise NotFoundError("no station {station}", station=station_id)
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise InvalidError("nothing to change")
    before = {k: getattr(station, k) for k in changes}
    for key, value in changes.items():
        setattr(station, key, value)
    session.add(station)
    audit.record(
        session,
        actor=caller,
        action="station.update",
        subject_type="station",
        subject_id=station_id,
        detail={"before": before, "after": changes},
    )
    session.commit()
    ctx.after_commit(Committed(feed_changed=True))
    session.refresh(station)
    if {"name", "names"} & changes.keys():  # the lockers' screens show the station's name
        for locker in session.exec(select(Locker).where(Locker.station_id == station_id)):
            publish_config(ctx, locker)
    if {"name", "names"} & changes.keys():  # the lockers' screens show the station's name
        for locker in session.exec(select(Locker).where(Locker.station_id == station_id)):
            publish_config(ctx, locker)
    return station


def register_locker(
    session: Session,
    ctx: AppContext,
    *,
    caller: Caller,
    locker_id: str,
    station_id: str,
    slot_count: int,
    pin_profile: str,
) -> tuple[Locker, str | None]:
    """Register a locker at a station and publish its config; its broker password if this cloud makes them.

    The password is returned once, here, and never stored.
    """
    if not LOCKER_ID_RE.fullmatch(locker_id):
        raise InvalidError("{locker!r} is not a locker id (LK- and 1-12 capitals or digits)", locker=locker_id)
    if not 1 <= slot_count <= MAX_SLOTS:
        raise InvalidError("a locker has 1 to {most} slots", most=MAX_SLOTS)
    if session.get(Station, station_id) is None:
        raise InvalidError("no station {station}", station=station_id)
    if session.get(Locker, locker_id) is not None:
        raise ConflictError("locker {locker} exists", locker=locker_id)
    locker = Locker(id=locker_id, station_id=station_id, slot_count=slot_count, pin_profile=pin_profile)
    session.add(locker)
    session.flush()
    ensure_slots(session, locker)
    audit.record(
        session,
        actor=caller,
        action="locker.register",
        subject_type="locker",
        subject_id=locker.id,
        detail={"station_id": station_id, "slot_count": slot_count, "pin_profile": pin_profile},
    )
    password = None
    if ctx.broker_admin is not None:  # its own broker user, limited to its own topics
        try:
            password = ctx.broker_admin.create_locker(locker.id)
        except BrokerAdminError as exc:
            session.rollback()
            raise UpstreamError("the broker refused: {reason}", reason=str(exc)) from None
    session.commit()
    ctx.after_commit(Committed(feed_changed=True))
    session.refresh(locker)
    publish_config(ctx, locker)
    return locker, password
