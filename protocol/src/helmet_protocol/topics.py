"""The only module that builds or parses MQTT topic strings.

Layout: ``helmet/v1/{locker_id}/{channel}``. A locker id is restricted to a
safe alphabet so that it can never smuggle ``+``, ``#`` or ``/`` into a topic.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from helmet_protocol.errors import TopicError

ROOT = "helmet/v1"
LOCKER_ID_RE = re.compile(r"^[A-Z]{2}-[0-9A-Z]{1,12}$")
INGEST_SHARE_GROUP = "ingest"


class Channel(StrEnum):
    """The per-locker topics of protocol v1."""

    STATUS = "status"
    EVENTS = "events"
    STATE = "state"
    CMD = "cmd"
    CMD_ACK = "cmd/ack"
    CONFIG = "config"
    ACK = "ack"


class Topic(NamedTuple):
    locker_id: str
    channel: Channel


def check_locker_id(locker_id: str) -> str:
    """Return ``locker_id`` if it is well formed (``LK-0001``), else raise."""
    if not LOCKER_ID_RE.fullmatch(locker_id):
        raise TopicError(f"invalid locker id {locker_id!r}: expected e.g. 'LK-0001'")
    return locker_id


def topic(locker_id: str, channel: Channel) -> str:
    """Build the topic for one locker and channel."""
    return f"{ROOT}/{check_locker_id(locker_id)}/{channel.value}"


def parse(topic_str: str) -> Topic:
    """Split a concrete topic into locker id and channel, or raise :class:`TopicError`."""
    prefix = ROOT + "/"
    if not topic_str.startswith(prefix):
        raise TopicError(f"topic {topic_str!r} is not under {ROOT}/")
    locker_id, sep, rest = topic_str[len(prefix) :].partition("/")
    if not sep:
        raise TopicError(f"topic {topic_str!r} has no channel")
    try:
        channel = Channel(rest)
    except ValueError:
        raise TopicError(f"topic {topic_str!r}: unknown channel {rest!r}") from None
    return Topic(check_locker_id(locker_id), channel)


def all_lockers(channel: Channel) -> str:
    """Subscription filter for one channel of every locker (cloud side)."""
    return f"{ROOT}/+/{channel.value}"


def shared(filter_: str, group: str = INGEST_SHARE_GROUP) -> str:
    """A shared-subscription filter so that several workers split the load."""
    return f"$share/{group}/{filter_}"
