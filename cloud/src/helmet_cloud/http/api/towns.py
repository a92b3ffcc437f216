"""Towns: the programmes this deployment runs; each station belongs to one."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Path, status
from pydantic import Field, field_validator
from sqlmodel import col, select

from helmet_cloud.errors import ConflictError, NotFoundError
from helmet_cloud.http.deps import AdminDep, SessionDep
from helmet_cloud.models import Town, TownBase
from helmet_cloud.services import audit

router = APIRouter(prefix="/api/towns", tags=["towns"])
TOWN_ID = r"^[a-z0-9][a-z0-9-]{0,31}$"
TownId = Annotated[str, Path(pattern=TOWN_ID)]


class TownCreate(TownBase):
    id: str = Field(pattern=TOWN_ID)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
        return value


@router.get("")
def list_towns(session: SessionDep) -> list[Town]:
    """Every town (public)."""
    return list(session.exec(select(Town).order_by(col(Town.id))).all())


@router.get("/{town_id}")
def get_town(town_id: TownId, session: SessionDep) -> Town:
    town = session.get(Town, town_id)
    if town is None:
        raise NotFoundError(f"no town {town_id}")
    return town


@router.post("", status_code=status.HTTP_201_CREATED)
def create_town(body: TownCreate, session: SessionDep, caller: AdminDep) -> Town:
    if session.get(Town, body.id) is not None:
        raise ConflictError(f"town {body.id} exists")
    town = Town.model_validate(body)
    session.add(town)
    audit.record(
        session,
        actor=caller,
        action="town.create",
        subject_type="town",
        subject_id=town.id,
        detail={"name": town.name, "timezone": town.timezone},
    )
    session.commit()
    session.refresh(town)
    return town
