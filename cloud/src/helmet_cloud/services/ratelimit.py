"""Request limits kept in the process's memory: a sliding window (RateLimiter) and a doubling back-off (Backoff).

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


class Backoff:
    """After ``free`` tries in a row, each further try waits twice as long as the one before: ``first`` seconds
    (1 unless said), twice that, four times ... up to ``cap`` seconds, counted from the last try's start.

    A try counts when it starts, so tries made at once cannot slip past the count; one that succeeds is given
    back (:meth:`give_back`) or clears the key (:meth:`forget`). A refused try changes nothing. A key left
    alone for ``forget_after`` seconds (four times the cap unless said) starts afresh.
    """

    def __init__(
        self, free: int, cap: float, *, first: float = 1, forget_after: float | None = None, max_keys: int = 100_000
    ) -> None:
        self.free = free
        self.cap = cap
        self.first = first
        self.forget_after = 4 * cap if forget_after is None else forget_after
        self.max_keys = max_keys
        self._tries: dict[str, tuple[int, float]] = {}  # key: (tries in a row, when the last one started)
        self._lock = threading.Lock()

    def wait_after(self, tries: int) -> float:
        """Seconds a try must wait after the last of ``tries`` tries in a row."""
        return 0 if tries < self.free else min(self.cap, self.first * 2 ** (tries - self.free))

    def hit(self, key: str, now: float) -> int | None:
        """Count one try; ``None`` if allowed, else the whole seconds until the next one will be."""
        with self._lock:
            tries, last = self._tries.get(key, (0, now))
            if now - last >= self.forget_after:
                tries = 0
            ready = last + self.wait_after(tries)
            if now < ready:
                return max(1, math.ceil(ready - now))
            if key not in self._tries and len(self._tries) >= self.max_keys:
                self._tries = {k: t for k, t in self._tries.items() if now - t[1] < self.forget_after}
            self._tries[key] = (tries + 1, now)
            return None

    def give_back(self, key: str) -> None:
        """Uncount one try of ``key`` (it succeeded, or was not made after all)."""
        with self._lock:
            tries, last = self._tries.get(key, (0, 0.0))
            if tries <= 1:
                self._tries.pop(key, None)
            else:
                self._tries[key] = (tries - 1, last)

    def forget(self, key: str) -> None:
        """Start ``key`` afresh."""
        with self._lock:
            self._tries.pop(key, None)
