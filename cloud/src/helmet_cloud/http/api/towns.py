"""Towns: the programmes this deployment runs; each station belongs to one."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Path, status
from pydantic import Field, field_validator
from sqlmodel import SQLModel, col, select

from helmet_cloud.domain.phones import is_region
from helmet_cloud.errors import ConflictError, NotFoundError
from helmet_cloud.http.deps import AdminDep, SessionDep
from helmet_cloud.models import TILE_URL, Town, TownBase
from helmet_cloud.services import audit

router = APIRouter(prefix="/api/towns", tags=["towns"])
TOWN_ID = r"^[a-z0-9][a-z0-9-]{0,31}$"
TownId = Annotated[str, Path(pattern=TOWN_ID)]


def _zone_name(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
    return value


def _phone_region(value: str | None) -> str | None:
    if value is not None and not is_region(value):
        raise ValueError(f"{value!r} is not a region with phone numbering data (ISO 3166 alpha-2, e.g. CH)")
    return value


class TownCreate(TownBase):
    id: str = Field(pattern=TOWN_ID)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _zone_name(value)

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        return _phone_region(value)


@router.get("")
def list_towns(session: SessionDep) -> list[Town]:
    """Every town (public)."""
    return list(session.exec(select(Town).order_by(col(Town.id))).all())


@router.get("/{town_id}")
def get_town(town_id: TownId, session: SessionDep) -> Town:
    town = session.get(Town, town_id)
    if town is None:
        raise NotFoundError("no town {town}", town=town_id)
    return town


@router.post("", status_code=status.HTTP_201_CREATED)
def create_town(body: TownCreate, session: SessionDep, caller: AdminDep) -> Town:
    if session.get(Town, body.id) is not None:
        raise ConflictError("town {town} exists", town=body.id)
    town = Town.model_validate(body)
    session.add(town)
    audit.record(
        session,
        actor=caller,
        action="town.create",
        subject_type="town",
        subject_id=town.id,
        detail={"name": town.name, "timezone": town.timezone, "phone_region": town.phone_region},
    )
    session.commit()
    session.refresh(town)
    return town


class TownChange(SQLModel):
    """What an admin may change of a town; fields left out stay as they are."""

    name: str | None = Field(default=None, max_length=120)
    timezone: str | None = Field(default=None, max_length=64)
    map_tile_url: str | None = Field(
        default=None, max_length=500, pattern=TILE_URL, description="the staff map's tiles ({z}/{x}/{y}); '' for none"
    )
    map_attribution: str | None = Field(default=None, max_length=300, description="the credit the tile server asks for")
    phone_region: str | None = Field(default=None, max_length=2, description="ISO 3166 alpha-2, e.g. CH")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _zone_name(value)

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        return _phone_region(value)


@router.patch("/{town_id}")
def update_town(town_id: TownId, body: TownChange, session: SessionDep, caller: AdminDep) -> Town:
    """Rename a town, set its clock (the zone its pages show times in and its charts count days by) or the region
    its residents' numbers are read in when typed without a country code."""
    town = get_town(town_id, session)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in changes.items():
        setattr(town, name, value)
    session.add(town)
    audit.record(session, actor=caller, action="town.update", subject_type="town", subject_id=town.id, detail=changes)
    session.commit()
    session.refresh(town)
    return town
