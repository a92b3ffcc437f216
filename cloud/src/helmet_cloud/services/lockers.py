"""Locker registration and the retained config each locker runs on."""

from __future__ import annotations

from sqlmodel import Session

from helmet_cloud.context import AppContext
from helmet_cloud.domain.pass_refusals import Refused
from helmet_cloud.models import Locker, Slot, Station
from helmet_cloud.services.pass_refusals import refused_for
from helmet_cloud.timeutil import utcnow
from helmet_protocol import topics
from helmet_protocol.messages import LockerConfig
from helmet_protocol.stickers import poster_url
from helmet_protocol.topics import Channel


def config_for(ctx: AppContext, locker: Locker, refused: Refused | None = None) -> LockerConfig:
    """The locker's config; ``refused``: the passes it must refuse (read from the database when not given)."""
    now = utcnow()
    with Session(ctx.engine) as session:
        if refused is None:
            refused = refused_for(session, locker.id, now)
        station = session.get(Station, locker.station_id)
    names = {"en": station.name, **station.names} if station is not None else {}
    return LockerConfig(
        locker_id=locker.id,
        slot_count=locker.slot_count,
        pass_keys=ctx.keys.public(),
        max_quantity=ctx.settings.max_quantity,
        revoked_pass_ids=list(refused.revoked),
        used_pass_ids=list(refused.used),
        helmet_url_host=ctx.settings.public_host,
        station_id=locker.station_id,
        station_names=names,
        poster_url=poster_url(ctx.settings.public_host, locker.station_id),
        ts=now,
    )


def publish_config(ctx: AppContext, locker: Locker, refused: Refused | None = None) -> bool:
    payload = config_for(ctx, locker, refused).to_json()
    return ctx.mqtt.publish(topics.topic(locker.id, Channel.CONFIG), payload, retain=True)


def ensure_slots(session: Session, locker: Locker) -> None:
    for n in range(1, locker.slot_count + 1):
        if session.get(Slot, (locker.id, n)) is None:
            session.add(Slot(locker_id=locker.id, slot=n))
