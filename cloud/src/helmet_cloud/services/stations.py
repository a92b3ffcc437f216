"""Stations: what each holds now, as every surface shows it."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field
from sqlmodel import Session

from helmet_cloud.models import Station, StationBase
from helmet_cloud.services.station_stock import station_stock


class StationStatus(StationBase):
    """A station and its counts (:mod:`helmet_cloud.domain.station_counts`): the API's, the pages' and the feed's."""

    id: str
    helmets_available: int = Field(description="helmets in slots in service: what a pass can open now")
    free_slots: int = Field(description="empty slots in service: where a helmet can be returned now")
    disabled_slots: int = Field(description="slots disabled or in fault, with or without a helmet")
    capacity: int = Field(description="every slot of the station's lockers, as registered")
    lockers: int
    lockers_online: int


def station_status(session: Session, stations: Sequence[Station]) -> list[StationStatus]:
    stock = station_stock(session, [s.id for s in stations])
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
            )
        )
    return out
