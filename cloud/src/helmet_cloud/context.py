"""Everything the API needs, built once in the lifespan from settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from helmet_cloud.adapters.dynsec import DynsecAdmin
from helmet_cloud.adapters.mqtt import CloudMqtt
from helmet_cloud.adapters.passkeys import PassKeys
from helmet_cloud.adapters.sms import SmsSender
from helmet_cloud.settings import CloudSettings


@dataclass(slots=True)
class AppContext:
    settings: CloudSettings
    engine: Engine
    keys: PassKeys
    mqtt: CloudMqtt
    sms: SmsSender
    # Manages lockers' broker users when the broker runs the dynamic-security plugin (docs/mqtt.md).
    broker_admin: DynsecAdmin | None = None
