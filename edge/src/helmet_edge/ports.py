"""The roles hardware adapters fill. The service depends only on these."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

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


class Clock(Protocol):
    def wall(self) -> datetime:
        """Timezone-aware UTC time for event timestamps and pass expiry."""

    def mono(self) -> float:
        """Seconds that never go backwards, for timeouts."""
