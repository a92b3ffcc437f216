"""Clock on the operating system's clocks: the wall clock (NTP-set) and the monotonic one."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SystemClock:
    def wall(self) -> datetime:
        return datetime.now(UTC)

    def mono(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
