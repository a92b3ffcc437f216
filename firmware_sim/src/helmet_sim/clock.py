"""Simulated time for towns: ``speed`` simulated seconds pass per real second.

Only what people do between visits to a kiosk follows this clock: when they
set out, how long they ride, how long they keep a helmet. Everything a
locker, the broker or the cloud measures stays on the wall clock (see
docs/simulation.md, "Accelerated time").
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    def __init__(self, speed: float, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self.start = start or datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
        self._t0 = time.monotonic()
        self._paused_at: float | None = None  # while paused, simulated time stands still
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            mono = self._paused_at if self._paused_at is not None else time.monotonic()
            return self.start + timedelta(seconds=(mono - self._t0) * self.speed)

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def pause(self) -> None:
        """Stop simulated time (a town paused for a check); :meth:`resume` lets it run on from there."""
        with self._lock:
            if self._paused_at is None:
                self._paused_at = time.monotonic()

    def resume(self) -> None:
        with self._lock:
            if self._paused_at is not None:
                self._t0 += time.monotonic() - self._paused_at
                self._paused_at = None

    def elapsed(self) -> timedelta:
        """Simulated time since the start."""
        return self.now() - self.start

    def real_seconds(self, simulated: timedelta) -> float:
        """How long ``simulated`` lasts on the wall clock."""
        return simulated.total_seconds() / self.speed

    def wait_until(self, when: datetime, stop: threading.Event) -> bool:
        """Sleep until simulated time ``when``; ``False`` if ``stop`` was set first."""
        return not stop.wait(max(0.0, self.real_seconds(when - self.now())))
