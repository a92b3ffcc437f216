"""Towns and what each sets for the people in it: its clock (the zone every page shows times in)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from helmet_cloud.models import DEFAULT_TOWN, Town


def zone_name(session: Session, town_id: str | None = None) -> str:
    """The IANA zone of ``town_id`` (the default town when None or unknown): the one clock its pages show."""
    town = session.get(Town, town_id or DEFAULT_TOWN)
    if town is None and town_id not in (None, DEFAULT_TOWN):
        town = session.get(Town, DEFAULT_TOWN)
    return town.timezone if town is not None else "UTC"


def zone_name_for(engine: Engine, town_id: str | None = None) -> str:
    """:func:`zone_name` in a session of its own, for callers that hold none (rendering a page)."""
    with Session(engine) as session:
        return zone_name(session, town_id)
