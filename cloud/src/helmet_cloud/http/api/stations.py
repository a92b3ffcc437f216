"""Stations and lockers: registration and what each holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from helmet_cloud.context import AppContext
from helmet_cloud.errors import NotFoundError
from helmet_cloud.http.deps import CtxDep, SessionDep, StaffDep, TechnicianDep
from helmet_cloud.i18n import DEFAULT, LANGUAGES
from helmet_cloud.models import Locker, LockerBase, Slot, Station, StationBase
from helmet_cloud.services import stations
from helmet_cloud.services.stations import StationStatus, stations_with_counts
from helmet_protocol.topics import LOCKER_ID_RE

router = APIRouter(prefix="/api", tags=["stations"])
StationId = Annotated[str, Path(pattern=r"^[A-Z]{2}-[0-9A-Z]{1,12}$")]
LockerIdPath = Annotated[str, Path(pattern=LOCKER_ID_RE.pattern)]


def _names(value: dict[str, str] | None) -> dict[str, str] | None:
    """Names per language: only the pages' languages besides English, each 1-120 characters."""
    if value is None:
        return None
    for lang, name in value.items():
        if lang not in LANGUAGES or lang == DEFAULT:
            raise ValueError(
                f"names are for {', '.join(x for x in LANGUAGES if x != DEFAULT)}; 'name' is the English one"
            )
        if not 1 <= len(name.strip()) <= 120:
            raise ValueError(f"the {lang} name must be 1-120 characters")
    return {lang: name.strip() for lang, name in value.items()}


class StationCreate(StationBase):
    id: str = Field(pattern=r"^[A-Z]{2}-[0-9A-Z]{1,12}$")

    @field_validator("names")
    @classmethod
    def _known_languages(cls, value: dict[str, str]) -> dict[str, str]:
        return _names(value) or {}


class StationUpdate(BaseModel):
    """Fields to change; the others stay as they are."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=120)
    names: dict[str, str] | None = None
    address: str | None = Field(default=None, max_length=240)
    low_threshold: int | None = Field(default=None, ge=0, le=1000)
    high_threshold: int | None = Field(default=None, ge=0, le=1000)

    @field_validator("names")
    @classmethod
    def _known_languages(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _names(value)


class LockerSummary(LockerBase):
    id: str
    online: bool
    last_seen: datetime | None
    last_heard_at: datetime | None
    acked_seq: int
    clock_offset_ms: int
    snapshot_mismatch: str | None


class LockerCreate(LockerBase):
    id: str = Field(pattern=LOCKER_ID_RE.pattern)


class SlotPublic(BaseModel):
    slot: int
    state: str
    helmet_id: str | None
    reported_state: str | None


class LockerPublic(LockerBase):
    id: str
    online: bool
    acked_seq: int
    snapshot_mismatch: str | None
    slots: list[SlotPublic]
    mqtt_password: str | None = Field(
        default=None,
        description="the locker's broker password (its username is its id); only in the answer to registering it",
    )


@router.post("/stations", status_code=status.HTTP_201_CREATED)
def create_station(body: StationCreate, session: SessionDep, ctx: CtxDep, caller: StaffDep) -> Station:
    return stations.create_station(session, ctx, caller=caller, station=Station.model_validate(body))


_STATION_LIST = TypeAdapter(list[StationStatus])


async def _cached(request: Request, ctx: AppContext, key: str, build: Callable[[Session], bytes]) -> Response:
    """Public status documents are cached until ingest changes slots or lockers (see :mod:`feedcache`).

    A hit is answered on the event loop; only a miss takes a worker thread and one database connection.
    """

    def fresh() -> bytes:
        with Session(ctx.engine) as session:
            return build(session)

    body = ctx.feed_cache.peek(key)
    if body is None:
        body = await run_in_threadpool(ctx.feed_cache.get, key, ctx.settings.feed_ttl_seconds, fresh)
    return Response(body, media_type="application/json")


@router.get("/stations", response_model=list[StationStatus])
async def list_stations(
    request: Request,
    ctx: CtxDep,
    town: Annotated[str | None, Query(max_length=32, description="only this town's")] = None,
) -> Response:
    """Every station with helmets available, free slots and lockers online (public)."""

    def build(session: Session) -> bytes:
        q = select(Station).order_by(col(Station.id))
        if town is not None:
            q = q.where(Station.town_id == town)
        return _STATION_LIST.dump_json(stations_with_counts(session, list(session.exec(q).all())))

    return await _cached(request, ctx, f"api-stations:{town or ''}", build)


@router.get("/stations/{station_id}", response_model=StationStatus)
async def get_station(station_id: StationId, request: Request, ctx: CtxDep) -> Response:
    # One connection per request, and only on a cache miss: a request that held one session while the
    # cache built with another could exhaust the pool under load and wait for itself.
    def build(session: Session) -> bytes:
        station = session.get(Station, station_id)
        return b"" if station is None else stations_with_counts(session, [station])[0].model_dump_json().encode()

    found = await _cached(request, ctx, f"api-station:{station_id}", build)
    if not found.body:  # registering a station invalidates the cache, so an absence is never stale
        raise NotFoundError("no station {station}", station=station_id)
    return found


@router.patch("/stations/{station_id}")
def update_station(
    station_id: StationId, body: StationUpdate, session: SessionDep, ctx: CtxDep, caller: StaffDep
) -> Station:
    """Rename a station, correct its address or change its alert thresholds."""
    changes = body.model_dump(exclude_unset=True)
    return stations.update_station(session, ctx, caller=caller, station_id=station_id, changes=changes)


@router.get("/lockers")
def list_lockers(
    session: SessionDep,
    _: TechnicianDep,
    station_id: Annotated[str | None, Query(max_length=32)] = None,
) -> list[LockerSummary]:
    """Every locker (or one station's): online, when last heard, acked seq, clock offset, snapshot mismatch."""
    q = select(Locker).order_by(col(Locker.id))
    if station_id is not None:
        q = q.where(Locker.station_id == station_id)
    return [LockerSummary.model_validate(lk, from_attributes=True) for lk in session.exec(q).all()]


@router.post("/lockers", status_code=status.HTTP_201_CREATED)
def register_locker(body: LockerCreate, session: SessionDep, ctx: CtxDep, caller: TechnicianDep) -> LockerPublic:
    """Register a locker at a station; its config (pass keys, limits) is published for it."""
    locker, password = stations.register_locker(
        session,
        ctx,
        caller=caller,
        locker_id=body.id,
        station_id=body.station_id,
        slot_count=body.slot_count,
        pin_profile=body.pin_profile,
    )
    return _locker_public(session, locker).model_copy(update={"mqtt_password": password})


@router.get("/lockers/{locker_id}")
def get_locker(locker_id: LockerIdPath, session: SessionDep, _: TechnicianDep) -> LockerPublic:
    locker = session.get(Locker, locker_id)
    if locker is None:
        raise NotFoundError("no locker {locker}", locker=locker_id)
    return _locker_public(session, locker)


def _locker_public(session: Session, locker: Locker) -> LockerPublic:
    slots = session.exec(select(Slot).where(Slot.locker_id == locker.id).order_by(col(Slot.slot))).all()
    return LockerPublic(
        **locker.model_dump(
            include={"id", "station_id", "slot_count", "pin_profile", "online", "acked_seq", "snapshot_mismatch"}
        ),
        slots=[
            SlotPublic(slot=s.slot, state=s.state, helmet_id=s.helmet_id, reported_state=s.reported_state)
            for s in slots
        ],
    )
