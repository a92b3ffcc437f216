"""A sliding-window request limit, kept in the process's memory.

Each API replica counts on its own: behind N replicas a client gets at most N
times the limit, which still stops a script from minting passes in bulk.
"""

from __future__ import annotations

import math
import threading
from collections import deque


class RateLimiter:
    """At most ``limit`` hits per key within any ``window`` seconds."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float) -> int | None:
        """Count one request; ``None`` if allowed, else the whole seconds until the next one will be."""
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._forget_idle(now)
                hits = self._hits[key] = deque()
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window - now))
            hits.append(now)
            return None

    def _forget_idle(self, now: float) -> None:
        self._hits = {k: h for k, h in self._hits.items() if h and now - h[-1] < self.window}
