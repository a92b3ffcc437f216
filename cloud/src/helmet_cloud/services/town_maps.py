"""Each town's map: the tile server its staff map draws streets from, and the credit that server asks for."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from helmet_cloud.models import Town
from helmet_cloud.settings import CloudSettings


@dataclass(frozen=True, slots=True)
class MapTiles:
    url: str | None  # a {z}/{x}/{y} template; None: the offline grid
    attribution: str


def town_tiles(session: Session, settings: CloudSettings, town_ids: Iterable[str]) -> dict[str, MapTiles]:
    """The tiles of each town named: its own, or the deployment's setting where it sets none ('' turns tiles off)."""
    ids = sorted(set(town_ids))
    towns = {t.id: t for t in session.exec(select(Town).where(col(Town.id).in_(ids))).all()} if ids else {}
    out = {}
    for town_id in ids:
        town = towns.get(town_id)
        url = town.map_tile_url if town is not None and town.map_tile_url is not None else settings.map_tile_url
        credit = town.map_attribution if town is not None and town.map_attribution is not None else None
        out[town_id] = MapTiles(url=url or None, attribution=settings.map_attribution if credit is None else credit)
    return out
