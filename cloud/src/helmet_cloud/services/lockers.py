"""Locker registration and the retained config each locker runs on."""

from __future__ import annotations

from sqlmodel import Session, select

from helmet_cloud.context import AppContext
from helmet_cloud.models import Locker, Slot
from helmet_cloud.timeutil import utcnow
from helmet_protocol import topics
from helmet_protocol.messages import LockerConfig
from helmet_protocol.topics import Channel


def config_for(ctx: AppContext, locker: Locker) -> LockerConfig:
    return LockerConfig(
        locker_id=locker.id,
        slot_count=locker.slot_count,
        pass_keys=ctx.keys.public(),
        max_quantity=ctx.settings.max_quantity,
        helmet_url_host=ctx.settings.public_host,
        ts=utcnow(),
    )


def publish_config(ctx: AppContext, locker: Locker) -> bool:
    return ctx.mqtt.publish(topics.topic(locker.id, Channel.CONFIG), config_for(ctx, locker).to_json(), retain=True)


def publish_all_configs(ctx: AppContext) -> int:
    with Session(ctx.engine) as session:
        lockers = session.exec(select(Locker)).all()
    return sum(publish_config(ctx, lk) for lk in lockers)


def ensure_slots(session: Session, locker: Locker) -> None:
    for n in range(1, locker.slot_count + 1):
        if session.get(Slot, (locker.id, n)) is None:
            session.add(Slot(locker_id=locker.id, slot=n))
