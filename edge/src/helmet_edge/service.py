"""The locker service as deployed: the loop (``loop.py``) with the SQLite store in ``data_dir`` and the
paho MQTT link, unless others are passed. For scripts and tests that want the defaults; ``cli.py`` and
``helmet_sim.rig`` build every adapter themselves.
"""

from __future__ import annotations

from helmet_edge.config import EdgeSettings
from helmet_edge.link_mqtt import MqttLink
from helmet_edge.loop import LockerLoop
from helmet_edge.ports import Camera, Clock, Decoder, LinkFactory, SlotBank, Speaker, Store
from helmet_edge.store import Store as SqliteStore
from helmet_edge.watchdog import Notifier


class LockerService(LockerLoop):
    def __init__(
        self,
        settings: EdgeSettings,
        *,
        slots: SlotBank,
        camera: Camera | None,
        decoder: Decoder,
        store: Store | None = None,
        link_factory: LinkFactory = MqttLink,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        speaker: Speaker | None = None,
    ) -> None:
        super().__init__(
            settings,
            slots=slots,
            camera=camera,
            decoder=decoder,
            store=store if store is not None else SqliteStore.in_data_dir(settings.data_dir, settings.locker_id),
            link_factory=link_factory,
            clock=clock,
            notifier=notifier,
            speaker=speaker,
        )
