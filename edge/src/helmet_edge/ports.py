"""The roles the locker's adapters fill. The service loop depends only on these."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from helmet_edge.config import MqttSettings
from helmet_edge.face import Utterance
from helmet_edge.slot_machine import EventDraft, SlotRecord
from helmet_protocol.messages import Event
from helmet_protocol.topics import Channel

Frame = npt.NDArray[np.uint8]


class Camera(Protocol):
    @property
    def healthy(self) -> bool:
        """Frames are arriving; a frozen or missing camera reads ``False``."""

    def read(self) -> Frame | None:
        """The newest frame, or ``None`` when none is available right now."""

    def close(self) -> None: ...


class Decoder(Protocol):
    def decode(self, frame: Frame) -> list[bytes]:
        """The raw payloads of every QR code found in the frame."""


class SlotBank(Protocol):
    slot_count: int

    def read(self) -> Mapping[int, tuple[bool, bool]]:
        """``{slot: (door_closed, helmet_present)}`` as the sensors read now."""

    def set_lock(self, slot: int, energised: bool) -> None: ...

    def lock_energised(self, slot: int) -> bool: ...

    def indicate(self, feedback: str) -> None:
        """Show the person at the kiosk what happened (LED, buzzer)."""

    def close(self) -> None: ...


class Speaker(Protocol):
    """The locker's voice (``speaker_alsa.py``: aplay; the simulator's records what it would play)."""

    def play(self, utterance: Utterance) -> None:
        """Start saying ``utterance`` without waiting for it; a newer one cuts an older one short."""

    def close(self) -> None: ...


class Clock(Protocol):
    def wall(self) -> datetime:
        """Timezone-aware UTC time for event timestamps and pass expiry."""

    def mono(self) -> float:
        """Seconds that never go backwards, for timeouts."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of :meth:`mono` time (start-up settling, the self-test's lock pulse)."""


class Store(Protocol):
    """The locker's durable memory (``store.py``: SQLite). One write path: :meth:`commit`."""

    def load_slots(self, slot_count: int) -> list[SlotRecord]: ...

    def commit(
        self,
        *,
        records: Iterable[SlotRecord] = (),
        events: Iterable[EventDraft] = (),
        honour: Iterable[tuple[str, datetime]] = (),
        now: datetime,
    ) -> list[Event]:
        """Slot changes, their events and honoured passes in one transaction; the events as numbered."""

    def last_seq(self) -> int: ...

    def acked_seq(self) -> int: ...

    def unsent(self, from_seq: int, limit: int) -> list[tuple[int, bytes]]: ...

    def outbox_size(self) -> int: ...

    def acknowledge(self, seq: int) -> int: ...

    def is_honoured(self, pass_id: str) -> bool: ...

    def forget_expired_passes(self, now: datetime) -> None: ...

    def forget_commands_before(self, before: datetime) -> int: ...

    def command_ack(self, cmd_id: str) -> bytes | None: ...

    def save_command_ack(self, cmd_id: str, ack: bytes, now: datetime) -> None: ...

    def get_json(self, key: str) -> Any: ...

    def put_json(self, key: str, value: Any) -> None: ...

    def close(self) -> None: ...


class Link(Protocol):
    """The locker's connection to the broker (``link_mqtt.py``: paho)."""

    @property
    def connected(self) -> bool: ...

    def wait_connected(self, timeout: float) -> bool: ...

    def start(self) -> None: ...

    def stop(self, offline_payload: bytes | None = None) -> None: ...

    def publish(self, channel: Channel, payload: bytes, *, retain: bool = False) -> object | None:
        """Hand one message over; ``None`` if it was refused (not connected, queue full)."""


class LinkFactory(Protocol):
    """How the service makes its :class:`Link`: it supplies the callbacks (``MqttLink`` is one)."""

    def __call__(
        self,
        settings: MqttSettings,
        locker_id: str,
        *,
        online_payload: Callable[[], bytes],
        offline_payload: bytes,
        on_message: Callable[[Channel, bytes], None],
        on_connect: Callable[[], None],
    ) -> Link: ...
